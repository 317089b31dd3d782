-- Test-only: objects that take seconds to answer, to show that a request's
-- deadline stops the statement on the server, not only the node's wait.
-- (services/appserver/testdata/slow.sql has the same view.)

CREATE OR REPLACE VIEW vw_slw AS SELECT 1 AS slw_id, SLEEP(5) AS slw_nap;

DELIMITER //

CREATE OR REPLACE PROCEDURE sp_slw_create(IN p_nap INT)
BEGIN
  DO SLEEP(5);
  SELECT 1 AS slw_id;
END//

CREATE OR REPLACE PROCEDURE sp_slw_update(IN p_id INT, IN p_nap INT)
BEGIN
  DO SLEEP(0);
END//

DELIMITER ;
