-- Domains "orders" (TLA ord) and "items" (TLA itm): the DBA-owned objects
-- behind templates/orders_rec.toml and templates/items_rec.toml, which the
-- REL templates user_orders, order_items and order_user relate to users.
-- Same calling convention as 001_users.sql. No foreign keys: BEDS does not
-- need them (a read's include matches rows by value); a DBA may add them,
-- and a write one refuses reaches the caller as conflict.
-- The join columns are indexed: include selects child rows with one IN
-- query on ord_user (a user's orders) and itm_order (an order's items).

CREATE TABLE IF NOT EXISTS tbl_ord (
  ord_id     BIGINT        NOT NULL AUTO_INCREMENT,
  ord_user   BIGINT        NOT NULL,
  ord_total  DECIMAL(12,2) NULL,
  ord_status VARCHAR(20)   NULL,
  ord_placed DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (ord_id),
  KEY ix_ord_user (ord_user),
  KEY ix_ord_placed (ord_placed)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE OR REPLACE VIEW vw_ord AS
  SELECT ord_id, ord_user, ord_total, ord_status, ord_placed
  FROM tbl_ord;

CREATE TABLE IF NOT EXISTS tbl_itm (
  itm_id    BIGINT        NOT NULL AUTO_INCREMENT,
  itm_order BIGINT        NOT NULL,
  itm_sku   VARCHAR(64)   NOT NULL,
  itm_qty   INT           NULL,
  itm_price DECIMAL(12,2) NULL,
  PRIMARY KEY (itm_id),
  KEY ix_itm_order (itm_order)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE OR REPLACE VIEW vw_itm AS
  SELECT itm_id, itm_order, itm_sku, itm_qty, itm_price
  FROM tbl_itm;

DELIMITER //

-- create: the writable fields in declaration order; returns the new key.
CREATE OR REPLACE PROCEDURE sp_ord_create(
  IN p_user BIGINT, IN p_total DECIMAL(12,2), IN p_status VARCHAR(20))
BEGIN
  INSERT INTO tbl_ord (ord_user, ord_total, ord_status)
  VALUES (p_user, p_total, p_status);
  SELECT LAST_INSERT_ID() AS ord_id;
END//

-- update: the key, then every writable field (stored values merged with
-- the request's data by BEDS, so NULL really means NULL).
CREATE OR REPLACE PROCEDURE sp_ord_update(
  IN p_id BIGINT, IN p_user BIGINT, IN p_total DECIMAL(12,2), IN p_status VARCHAR(20))
BEGIN
  UPDATE tbl_ord
     SET ord_user = p_user, ord_total = p_total, ord_status = p_status
   WHERE ord_id = p_id;
END//

-- delete: the key.
CREATE OR REPLACE PROCEDURE sp_ord_delete(IN p_id BIGINT)
BEGIN
  DELETE FROM tbl_ord WHERE ord_id = p_id;
END//

CREATE OR REPLACE PROCEDURE sp_itm_create(
  IN p_order BIGINT, IN p_sku VARCHAR(64), IN p_qty INT, IN p_price DECIMAL(12,2))
BEGIN
  INSERT INTO tbl_itm (itm_order, itm_sku, itm_qty, itm_price)
  VALUES (p_order, p_sku, p_qty, p_price);
  SELECT LAST_INSERT_ID() AS itm_id;
END//

CREATE OR REPLACE PROCEDURE sp_itm_update(
  IN p_id BIGINT, IN p_order BIGINT, IN p_sku VARCHAR(64), IN p_qty INT, IN p_price DECIMAL(12,2))
BEGIN
  UPDATE tbl_itm
     SET itm_order = p_order, itm_sku = p_sku, itm_qty = p_qty, itm_price = p_price
   WHERE itm_id = p_id;
END//

CREATE OR REPLACE PROCEDURE sp_itm_delete(IN p_id BIGINT)
BEGIN
  DELETE FROM tbl_itm WHERE itm_id = p_id;
END//

DELIMITER ;
