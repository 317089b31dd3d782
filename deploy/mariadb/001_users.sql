-- Domain "users" (TLA usr): the DBA-owned objects behind templates/users_rec.toml.
-- Applications never see the table; they read vw_usr and write through the
-- procedures, which take their parameters in the template's declared order.
-- Runs in the current database (the compose file's MARIADB_DATABASE, or the
-- one named on the mariadb command line).

CREATE TABLE IF NOT EXISTS tbl_usr (
  usr_id      BIGINT       NOT NULL AUTO_INCREMENT,
  usr_email   VARCHAR(254) NOT NULL,
  usr_name    VARCHAR(200) NULL,
  usr_age     INT          NULL,
  usr_score   DOUBLE       NULL,
  usr_active  TINYINT(1)   NOT NULL DEFAULT 1,
  usr_prefs   JSON         NULL,
  usr_created DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (usr_id),
  UNIQUE KEY uq_usr_email (usr_email),
  KEY ix_usr_created (usr_created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE OR REPLACE VIEW vw_usr AS
  SELECT usr_id, usr_email, usr_name, usr_age, usr_score, usr_active, usr_prefs, usr_created
  FROM tbl_usr;

DELIMITER //

-- create: the writable fields in declaration order; returns the new key.
CREATE OR REPLACE PROCEDURE sp_usr_create(
  IN p_email VARCHAR(254), IN p_name VARCHAR(200), IN p_age INT,
  IN p_score DOUBLE, IN p_active TINYINT(1), IN p_prefs JSON)
BEGIN
  INSERT INTO tbl_usr (usr_email, usr_name, usr_age, usr_score, usr_active, usr_prefs)
  VALUES (p_email, p_name, p_age, p_score, COALESCE(p_active, 1), p_prefs);
  SELECT LAST_INSERT_ID() AS usr_id;
END//

-- update: the key, then every writable field (stored values merged with
-- the request's data by BEDS, so NULL really means NULL).
CREATE OR REPLACE PROCEDURE sp_usr_update(
  IN p_id BIGINT, IN p_email VARCHAR(254), IN p_name VARCHAR(200), IN p_age INT,
  IN p_score DOUBLE, IN p_active TINYINT(1), IN p_prefs JSON)
BEGIN
  UPDATE tbl_usr
     SET usr_email = p_email, usr_name = p_name, usr_age = p_age, usr_score = p_score,
         usr_active = COALESCE(p_active, 1), usr_prefs = p_prefs
   WHERE usr_id = p_id;
END//

-- delete: the key.
CREATE OR REPLACE PROCEDURE sp_usr_delete(IN p_id BIGINT)
BEGIN
  DELETE FROM tbl_usr WHERE usr_id = p_id;
END//

DELIMITER ;
