-- Test-only: objects that take seconds to answer, to show that a request's
-- deadline stops the statement on the server, not only the node's wait.
-- (services/appserver/testdata/slow.sql has the same view.)

CREATE OR REPLACE VIEW vw_slw AS SELECT 1 AS slw_id, SLEEP(5) AS slw_nap;

DELIMITER //

-- The create skeleton of the calling convention (package mariadb), with
-- the nap inside its transaction. (A SLEEP the time limit stops returns 1
-- and the procedure goes on to record and commit: the caller's timeout
-- does not say the create was not applied, and a redelivery is answered
-- from its record.)
CREATE OR REPLACE PROCEDURE sp_slw_create(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN p_nap INT)
BEGIN
  DECLARE beds_own BOOL DEFAULT @@in_transaction = 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN IF beds_own THEN ROLLBACK; END IF; RESIGNAL; END;
  IF beds_own THEN START TRANSACTION; END IF;
  DO SLEEP(5);
  IF beds_event IS NOT NULL THEN
    CALL beds_record(beds_event, 'slow', 'create', 1, '1');
  END IF;
  IF beds_own THEN COMMIT; END IF;
  SELECT 1 AS slw_id;
END//

-- The update skeleton (package mariadb), with the same nap inside its
-- transaction: an update by key is this one CALL, so the nap is what the
-- deadline stops. The row of the key is vw_slw's one row, id 1; there is
-- no table to lock.
CREATE OR REPLACE PROCEDURE sp_slw_update(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN beds_set TEXT CHARACTER SET ascii, IN p_id INT, IN p_nap INT)
BEGIN
  DECLARE beds_own BOOL DEFAULT @@in_transaction = 0;
  DECLARE beds_rows BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN IF beds_own THEN ROLLBACK; END IF; RESIGNAL; END;
  IF beds_own THEN START TRANSACTION; END IF;
  SET beds_rows = IF(p_id = 1, 1, 0);
  DO SLEEP(5);
  IF beds_event IS NOT NULL AND beds_rows > 0 THEN
    CALL beds_record(beds_event, 'slow', 'update', beds_rows, NULL);
  END IF;
  IF beds_own THEN COMMIT; END IF;
  SELECT beds_rows AS beds_affected;
END//

DELIMITER ;
