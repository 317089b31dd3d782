# The mariadb image sources this (not executable) once, after the *.sql
# before it, at the data volume's first initialisation: it creates the
# nodes' accounts with only what they need (accounts/accounts.sh, which
# reads MARIADB_APP_* and MARIADB_TERCERO_* from the container's
# environment). docker_process_sql is the image's: it runs the SQL as
# root in MARIADB_DATABASE, and a failure stops the initialisation.
bash /docker-entrypoint-initdb.d/accounts/accounts.sh | docker_process_sql
