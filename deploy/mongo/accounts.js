// Creates the nodes' MongoDB account: readWrite on this database
// (MONGO_INITDB_DATABASE, "beds") and nothing else: no other database, no
// user or role administration, no cluster commands. The root account of
// MONGO_INITDB_ROOT_USERNAME is the image's, for operators and this
// initialisation only; the nodes authenticate against this database
// (BEDS_MONGO_URI mongodb://<user>:<password>@mongo:27017/beds, no
// authSource). The official mongo image runs every *.js here in name order
// with mongosh as root, once, when the data volume is first initialised;
// mongosh passes the container's environment in process.env.
// readWrite covers what a node does: find, insert, update, delete,
// aggregate, listCollections and listIndexes (the start-up schema check).
// Run again (mongosh as root) after changing the password: it updates it.
const user = process.env.MONGO_NODE_USER;
const pwd = process.env.MONGO_NODE_PASSWORD;
if (!user || !pwd) {
  throw new Error('accounts.js: set MONGO_NODE_USER and MONGO_NODE_PASSWORD in the mongo container');
}
const roles = [{ role: 'readWrite', db: db.getName() }];
if (db.getUser(user)) {
  db.updateUser(user, { pwd: pwd, roles: roles });
} else {
  db.createUser({ user: user, pwd: pwd, roles: roles });
}
print('accounts.js: ' + user + ' has readWrite on ' + db.getName());
