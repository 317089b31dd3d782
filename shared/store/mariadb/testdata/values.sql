-- Test-only: a domain whose procedure stores strings in typed columns, as a
-- DBA's procedure might, so the server itself refuses a caller's value
-- (1366 incorrect integer, 1292 incorrect date) and the adapter has to
-- say bad_value without naming the columns.

CREATE TABLE IF NOT EXISTS tbl_val (
  val_id BIGINT NOT NULL AUTO_INCREMENT,
  val_n  INT    NULL,
  val_d  DATE   NULL,
  PRIMARY KEY (val_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE OR REPLACE VIEW vw_val AS SELECT val_id, val_n, val_d FROM tbl_val;

DELIMITER //

-- The create skeleton of the calling convention (package mariadb): the
-- event ID first, recorded with the key in the procedure's transaction.
CREATE OR REPLACE PROCEDURE sp_val_create(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN p_n VARCHAR(40), IN p_d VARCHAR(40))
BEGIN
  DECLARE beds_own BOOL DEFAULT @@in_transaction = 0;
  DECLARE v_key BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN IF beds_own THEN ROLLBACK; END IF; RESIGNAL; END;
  IF beds_own THEN START TRANSACTION; END IF;
  INSERT INTO tbl_val (val_n, val_d) VALUES (p_n, p_d);
  SET v_key = LAST_INSERT_ID();
  IF beds_event IS NOT NULL THEN
    CALL beds_record(beds_event, 'values', 'create', 1, CAST(v_key AS CHAR));
  END IF;
  IF beds_own THEN COMMIT; END IF;
  SELECT v_key AS val_id;
END//

DELIMITER ;
