// Creates the indexes of BEDS's own collections (beds_lineage) from
// indexes.json beside this file. The templates' collections, validators and
// indexes come from the NNN_<template>.js scripts of bedsctl schema gen.
// The official mongo image runs every *.js of /docker-entrypoint-initdb.d
// in name order (the scripts, then this) with mongosh against
// MONGO_INITDB_DATABASE; tests apply the same files through the Go driver
// (shared/testenv).
const fs = require('fs');
const spec = JSON.parse(fs.readFileSync('/docker-entrypoint-initdb.d/indexes.json', 'utf8'));
for (const [coll, indexes] of Object.entries(spec)) {
  for (const ix of indexes) {
    const keys = {};
    for (const [field, dir] of ix.keys) keys[field] = dir;
    db.getCollection(coll).createIndex(keys, { name: ix.name, unique: !!ix.unique });
  }
}
