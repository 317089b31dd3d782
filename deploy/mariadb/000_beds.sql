-- BEDS's own object in every MariaDB store that templates write to: the
-- record of applied write events. Each create, update and delete inserts
-- its event ID here in the same transaction as the write itself, so a
-- redelivered request (same event ID) finds its row, is not applied a
-- second time, and gets the first delivery's result back. One primary-key
-- insert per write; rows older than RabbitMQ's redelivery horizon may be
-- purged by the DBA (see docs/guarantees.md). Every write procedure
-- (create, update, delete) inserts its record: the generated ones with
-- their own INSERT, others may CALL beds_record below, which inserts the
-- same row, one nested CALL deeper (docs/performance.md, step 5).
-- A write by another filter than its key's equality, and a delete whose
-- template passes its procedure more than the key, pass their procedure
-- no event: BEDS inserts the record after the calls.

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

-- beds_record inserts the record of an applied write: a write procedure
-- (create, update, delete) that does not insert it itself calls it after
-- its write, in the same transaction (calling convention: package
-- mariadb, shared/store/mariadb). Either way the insert fails with a
-- duplicate key (1062) when the event was recorded before, which rolls
-- the write back; BEDS then answers the first delivery's result. It runs
-- as its definer, inside a procedure that runs as its own: the nodes'
-- accounts need no grant on it (accounts/accounts.sh gives none).
-- (Comments here and in the templates' scripts avoid the words that
-- declare a view or procedure: accounts.sh reads grants from them.)

DELIMITER //

CREATE OR REPLACE PROCEDURE `beds_record`(
  IN `beds_event` VARCHAR(200) CHARACTER SET ascii,
  IN `beds_template` VARCHAR(64),
  IN `beds_op` VARCHAR(8),
  IN `beds_affected` BIGINT,
  IN `beds_key` VARCHAR(255)
)
BEGIN
  INSERT INTO `beds_events` (evt_id, evt_template, evt_op, evt_affected, evt_key)
  VALUES (`beds_event`, `beds_template`, `beds_op`, `beds_affected`, `beds_key`);
END//

DELIMITER ;

-- The lineage of events (issue 11): one row per event a node handled, a
-- request or a child operation it fanned out to, written in batches by the
-- node's lineage recorder. Only the store named by [lineage] store in the
-- node configuration needs it; elsewhere it stays empty. A row names its
-- parent event (lin_parent), and a lineage request follows those links
-- down from an event. It is a diagnostic trail: rows may be missing (a
-- recorder drops records under overload rather than slow requests), a
-- redelivered event's row holds its latest outcome, and the proof that a
-- write was applied once stays in beds_events. Old rows may be purged by
-- the DBA at any time, by lin_started, e.g.
--   DELETE FROM beds_lineage WHERE lin_started < UTC_TIMESTAMP() - INTERVAL 30 DAY LIMIT 10000;
-- (times are UTC).

CREATE TABLE IF NOT EXISTS beds_lineage (
  lin_event       VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  lin_parent      VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NULL,
  lin_op          VARCHAR(16)  NOT NULL,
  lin_template    VARCHAR(64)  NULL,
  lin_node        VARCHAR(255) NULL,
  lin_outcome     VARCHAR(32)  NOT NULL,
  lin_started     DATETIME(6)  NOT NULL,
  lin_duration_us BIGINT       NOT NULL DEFAULT 0,
  lin_trace       VARCHAR(55)  NULL,
  PRIMARY KEY (lin_event),
  KEY ix_lin_parent (lin_parent),
  KEY ix_lin_started (lin_started)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
