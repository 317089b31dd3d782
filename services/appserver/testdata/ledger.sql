CREATE TABLE IF NOT EXISTS tbl_led (
  led_id     BIGINT      NOT NULL AUTO_INCREMENT,
  led_ref    VARCHAR(64) NOT NULL,
  led_amount INT         NULL,
  PRIMARY KEY (led_id),
  KEY ix_led_ref (led_ref)
) ENGINE=InnoDB;

CREATE OR REPLACE VIEW vw_led AS SELECT led_id, led_ref, led_amount FROM tbl_led;

DELIMITER //
-- The create skeleton of the calling convention (package mariadb): the
-- event ID first, recorded with the key in the procedure's transaction.
CREATE OR REPLACE PROCEDURE sp_led_create(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN p_ref VARCHAR(64), IN p_amount INT)
BEGIN
  DECLARE beds_own BOOL DEFAULT @@in_transaction = 0;
  DECLARE v_key BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN IF beds_own THEN ROLLBACK; END IF; RESIGNAL; END;
  IF beds_own THEN START TRANSACTION; END IF;
  INSERT INTO tbl_led (led_ref, led_amount) VALUES (p_ref, p_amount);
  SET v_key = LAST_INSERT_ID();
  IF beds_event IS NOT NULL THEN
    CALL beds_record(beds_event, 'ledger', 'create', 1, CAST(v_key AS CHAR));
  END IF;
  IF beds_own THEN COMMIT; END IF;
  SELECT v_key AS led_id;
END//
DELIMITER ;
