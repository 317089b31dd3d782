CREATE TABLE IF NOT EXISTS tbl_led (
  led_id     BIGINT      NOT NULL AUTO_INCREMENT,
  led_ref    VARCHAR(64) NOT NULL,
  led_amount INT         NULL,
  PRIMARY KEY (led_id),
  KEY ix_led_ref (led_ref)
) ENGINE=InnoDB;

CREATE OR REPLACE VIEW vw_led AS SELECT led_id, led_ref, led_amount FROM tbl_led;

DELIMITER //
CREATE OR REPLACE PROCEDURE sp_led_create(IN p_ref VARCHAR(64), IN p_amount INT)
BEGIN
  INSERT INTO tbl_led (led_ref, led_amount) VALUES (p_ref, p_amount);
  SELECT LAST_INSERT_ID() AS led_id;
END//
DELIMITER ;
