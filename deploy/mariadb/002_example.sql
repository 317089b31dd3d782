-- Domain "example" (TLA exm): the DBA-owned objects behind
-- templates/example_rec.toml, the self-documenting template. Its create
-- procedure shows a parameter list that differs from the default order
-- (the template says so with [params]) and a procedure-side check that
-- callers see as bad_value.

CREATE TABLE IF NOT EXISTS tbl_exm (
  exm_code    VARCHAR(32)  NOT NULL,
  exm_title   VARCHAR(120) NOT NULL,
  exm_qty     INT          NOT NULL DEFAULT 0,
  exm_price   DECIMAL(12,2) NULL,
  exm_meta    JSON         NULL,
  exm_updated DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (exm_code),
  KEY ix_exm_updated (exm_updated)   -- the template marks updated sortable
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE OR REPLACE VIEW vw_exm AS
  SELECT exm_code, exm_title, exm_qty, exm_price, exm_meta, exm_updated FROM tbl_exm;

DELIMITER //

-- create takes the key first: the caller chooses it (see [params] in the template).
CREATE OR REPLACE PROCEDURE sp_exm_create(
  IN p_code VARCHAR(32), IN p_title VARCHAR(120), IN p_qty INT, IN p_price DECIMAL(12,2), IN p_meta JSON)
BEGIN
  IF p_qty < 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'qty must not be negative';
  END IF;
  INSERT INTO tbl_exm (exm_code, exm_title, exm_qty, exm_price, exm_meta)
  VALUES (p_code, p_title, COALESCE(p_qty, 0), p_price, p_meta);
  SELECT p_code AS exm_code;
END//

CREATE OR REPLACE PROCEDURE sp_exm_update(
  IN p_code VARCHAR(32), IN p_title VARCHAR(120), IN p_qty INT, IN p_price DECIMAL(12,2), IN p_meta JSON)
BEGIN
  IF p_qty < 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'qty must not be negative';
  END IF;
  UPDATE tbl_exm SET exm_title = p_title, exm_qty = COALESCE(p_qty, 0), exm_price = p_price, exm_meta = p_meta
   WHERE exm_code = p_code;
END//

CREATE OR REPLACE PROCEDURE sp_exm_delete(IN p_code VARCHAR(32))
BEGIN
  DELETE FROM tbl_exm WHERE exm_code = p_code;
END//

DELIMITER ;
