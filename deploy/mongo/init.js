// Creates the collections' indexes from indexes.json beside this file.
// The official mongo image runs this from /docker-entrypoint-initdb.d with
// mongosh against MONGO_INITDB_DATABASE; tests apply the same JSON through
// the Go driver (shared/testenv).
const fs = require('fs');
const spec = JSON.parse(fs.readFileSync('/docker-entrypoint-initdb.d/indexes.json', 'utf8'));
for (const [coll, indexes] of Object.entries(spec)) {
  for (const ix of indexes) {
    const keys = {};
    for (const [field, dir] of ix.keys) keys[field] = dir;
    db.getCollection(coll).createIndex(keys, { name: ix.name, unique: !!ix.unique });
  }
}
