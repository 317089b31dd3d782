#!/bin/bash
# Prints the SQL that creates BEDS's MariaDB accounts for the nodes, with
# only what each needs (docs/deployment.md, least privilege):
#
#   MARIADB_APP_USER, MARIADB_APP_PASSWORD          appservers
#   MARIADB_TERCERO_USER, MARIADB_TERCERO_PASSWORD  tercero
#
# Each gets, on database MARIADB_DATABASE: SELECT on the views and EXECUTE
# on the procedures of its own templates; SELECT, INSERT on beds_events
# (a write's event record: applied once); SELECT, INSERT, UPDATE on
# beds_lineage (the lineage recorder's upserts and lineage reads); nothing
# else: no table of a template (tbl_*), no DDL, no SHOW VIEW (so the
# start-up schema check does not see the tables behind the views and
# checks the views and procedures only). Tercero's templates are those
# with the TLAs of TERCERO_TLAS (default "acc ses flr"); every other
# template's objects are the appservers'.
#
# The objects are read from the DBA scripts: every CREATE [OR REPLACE]
# VIEW and PROCEDURE in MARIADB_SCRIPTS/*.sql (default: this script's
# parent folder, deploy/mariadb), named vw_<tla> and sp_<tla>_<op> as
# bedsctl schema gen writes them, so a new template's file grants itself;
# BEDS's own procedures (beds_*) are granted to no one: the procedures that
# call them run as their definer (SQL SECURITY DEFINER).
# Run again after adding one (it revokes and grants again: idempotent).
# MARIADB_ACCOUNT_HOST is the accounts' host part (default %, any).
#
# 900_accounts.sh runs this in the mariadb image's first initialisation;
# services/appserver's TestLeastPrivilege applies it to a test database.
# User names and passwords are limited to letters, digits and - . _ ~ (they
# also go into URLs and DSNs); anything else is refused, not escaped.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
scripts=${MARIADB_SCRIPTS:-$(dirname "$here")}
db=${MARIADB_DATABASE:?MARIADB_DATABASE: the database holding the DBA objects}
host=${MARIADB_ACCOUNT_HOST:-%}
tercero_tlas=${TERCERO_TLAS:-acc ses flr}

plain() { # name value
	if ! [[ $2 =~ ^[A-Za-z0-9._~-]+$ ]]; then
		echo "accounts.sh: $1 must be letters, digits and - . _ ~ only (and not empty)" >&2
		exit 1
	fi
}
plain MARIADB_DATABASE "$db"
[[ $host =~ ^[A-Za-z0-9.%_-]+$ ]] || { echo "accounts.sh: MARIADB_ACCOUNT_HOST: letters, digits, . % _ - only" >&2; exit 1; }
for v in MARIADB_APP_USER MARIADB_APP_PASSWORD MARIADB_TERCERO_USER MARIADB_TERCERO_PASSWORD; do
	plain "$v" "${!v:-}"
done
if [ "$MARIADB_APP_USER" = "$MARIADB_TERCERO_USER" ]; then
	echo "accounts.sh: MARIADB_APP_USER and MARIADB_TERCERO_USER must differ" >&2
	exit 1
fi

shopt -s nullglob
files=("$scripts"/*.sql)
if [ ${#files[@]} -eq 0 ]; then
	echo "accounts.sh: no *.sql in $scripts" >&2
	exit 1
fi
# kind name, one a line: "VIEW vw_usr", "PROCEDURE sp_usr_create".
objects=$(cat "${files[@]}" |
	grep -oiE 'CREATE[[:space:]]+(OR[[:space:]]+REPLACE[[:space:]]+)?(VIEW|PROCEDURE)[[:space:]]+`?[A-Za-z0-9_]+' |
	sed -E 's/^CREATE[[:space:]]+(OR[[:space:]]+REPLACE[[:space:]]+)?//I; s/`//g; s/[[:space:]]+/ /' |
	awk '{ print toupper($1), $2 }' | sort -u)

tercero() { # object name -> is it tercero's?
	local tla
	for tla in $tercero_tlas; do
		case $1 in vw_"$tla" | sp_"$tla"_*) return 0 ;; esac
	done
	return 1
}

account() { # user password tercero(yes|no)
	local who="'$1'@'$host'" kind name
	echo "CREATE USER IF NOT EXISTS $who IDENTIFIED BY '$2';"
	echo "ALTER USER $who IDENTIFIED BY '$2';"
	echo "REVOKE ALL PRIVILEGES, GRANT OPTION FROM $who;"
	echo "GRANT USAGE ON *.* TO $who;"
	echo "GRANT SELECT, INSERT ON \`$db\`.\`beds_events\` TO $who;"
	echo "GRANT SELECT, INSERT, UPDATE ON \`$db\`.\`beds_lineage\` TO $who;"
	while read -r kind name; do
		[ -n "$name" ] || continue
		# BEDS's own procedures (beds_record, 000_beds.sql) run inside the
		# write procedures that call them, as their definer: no node calls them.
		case $name in beds_*) continue ;; esac
		if tercero "$name"; then [ "$3" = yes ] || continue; else [ "$3" = no ] || continue; fi
		case $kind in
		VIEW) echo "GRANT SELECT ON \`$db\`.\`$name\` TO $who;" ;;
		PROCEDURE) echo "GRANT EXECUTE ON PROCEDURE \`$db\`.\`$name\` TO $who;" ;;
		esac
	done <<<"$objects"
}

echo "-- BEDS's node accounts (deploy/mariadb/accounts/accounts.sh); objects from $scripts/*.sql"
account "$MARIADB_APP_USER" "$MARIADB_APP_PASSWORD" no
account "$MARIADB_TERCERO_USER" "$MARIADB_TERCERO_PASSWORD" yes
echo "FLUSH PRIVILEGES;"
