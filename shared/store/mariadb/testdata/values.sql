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

CREATE OR REPLACE PROCEDURE sp_val_create(IN p_n VARCHAR(40), IN p_d VARCHAR(40))
BEGIN
  INSERT INTO tbl_val (val_n, val_d) VALUES (p_n, p_d);
  SELECT LAST_INSERT_ID() AS val_id;
END//

DELIMITER ;
