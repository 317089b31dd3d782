-- Test-only (fault tests): rows that are updated and deleted, with an
-- audit table the procedures write to on every call. The audit has no
-- unique key, so a write applied twice shows up as two audit rows, and
-- each row counts its updates (cnt_n), so a doubled update also shows in
-- the count its delete records.
CREATE TABLE IF NOT EXISTS tbl_cnt (
  cnt_id  BIGINT       NOT NULL,
  cnt_ref VARCHAR(200) NULL,
  cnt_n   INT          NOT NULL DEFAULT 0,
  PRIMARY KEY (cnt_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS tbl_cnt_log (
  log_id  BIGINT       NOT NULL AUTO_INCREMENT,
  log_op  VARCHAR(8)   NOT NULL,
  log_row BIGINT       NOT NULL,
  log_ref VARCHAR(200) NULL,
  log_n   INT          NULL,
  PRIMARY KEY (log_id),
  KEY ix_log_row (log_row)
) ENGINE=InnoDB;

CREATE OR REPLACE VIEW vw_cnt AS SELECT cnt_id, cnt_ref, cnt_n FROM tbl_cnt;

DELIMITER //
-- The update skeleton of the calling convention (package mariadb): the
-- event ID and the fields the request sets first, the update, its audit
-- row (the row as updated) and the event's record in one transaction, the
-- rows matched answered. A redelivered update fails on its record and
-- rolls back, audit row and count included.
CREATE OR REPLACE PROCEDURE sp_cnt_update(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN beds_set TEXT CHARACTER SET ascii, IN p_id BIGINT, IN p_ref VARCHAR(200))
BEGIN
  DECLARE beds_own BOOL DEFAULT @@in_transaction = 0;
  DECLARE beds_rows BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN IF beds_own THEN ROLLBACK; END IF; RESIGNAL; END;
  IF beds_own THEN START TRANSACTION; END IF;
  SELECT COUNT(*) INTO beds_rows FROM tbl_cnt WHERE cnt_id = p_id FOR UPDATE;
  UPDATE tbl_cnt SET cnt_ref = IF(FIND_IN_SET('ref', beds_set), p_ref, cnt_ref), cnt_n = cnt_n + 1 WHERE cnt_id = p_id;
  INSERT INTO tbl_cnt_log (log_op, log_row, log_ref, log_n)
    SELECT 'update', cnt_id, cnt_ref, cnt_n FROM tbl_cnt WHERE cnt_id = p_id;
  IF beds_event IS NOT NULL AND beds_rows > 0 THEN
    CALL beds_record(beds_event, 'counter', 'update', beds_rows, NULL);
  END IF;
  IF beds_own THEN COMMIT; END IF;
  SELECT beds_rows AS beds_affected;
END//

-- The delete skeleton: the event ID first, the audit row (the row as it
-- was, read under an exclusive lock, as the update's count takes it), the
-- delete and the event's record in one transaction, the rows deleted
-- answered. A redelivered delete fails on its record and rolls back, audit
-- row included.
CREATE OR REPLACE PROCEDURE sp_cnt_delete(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN p_id BIGINT)
BEGIN
  DECLARE beds_own BOOL DEFAULT @@in_transaction = 0;
  DECLARE beds_rows BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN IF beds_own THEN ROLLBACK; END IF; RESIGNAL; END;
  IF beds_own THEN START TRANSACTION; END IF;
  INSERT INTO tbl_cnt_log (log_op, log_row, log_ref, log_n)
    SELECT 'delete', cnt_id, cnt_ref, cnt_n FROM tbl_cnt WHERE cnt_id = p_id FOR UPDATE;
  DELETE FROM tbl_cnt WHERE cnt_id = p_id;
  SET beds_rows = ROW_COUNT();
  IF beds_event IS NOT NULL AND beds_rows > 0 THEN
    CALL beds_record(beds_event, 'counter', 'delete', beds_rows, NULL);
  END IF;
  IF beds_own THEN COMMIT; END IF;
  SELECT beds_rows AS beds_affected;
END//
DELIMITER ;
