-- BEDS's own object in every MariaDB store that templates write to: the
-- record of applied write events. Each create, update and delete inserts
-- its event ID here in the same transaction as the write itself, so a
-- redelivered request (same event ID) finds its row, is not applied a
-- second time, and gets the first delivery's result back. One primary-key
-- insert per write; rows older than RabbitMQ's redelivery horizon may be
-- purged by the DBA (see docs/guarantees.md).

CREATE TABLE IF NOT EXISTS beds_events (
  evt_id       VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  evt_template VARCHAR(64)  NOT NULL,
  evt_op       VARCHAR(8)   NOT NULL,
  evt_affected BIGINT       NOT NULL DEFAULT 0,
  evt_key      VARCHAR(255) NULL,
  evt_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (evt_id),
  KEY ix_evt_at (evt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
