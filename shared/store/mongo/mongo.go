// Package mongo is the store adapter for MongoDB (and MongoDB-wire servers
// such as FerretDB).
//
// A template served by MongoDB names one collection (objects.collection);
// every operation runs on it directly. Mapping rules, stated once:
//
//   - Documents are keyed by stored names (usr_email); the key field is
//     stored as _id unless its template sets another stored name. Reply
//     rows are keyed by plain names (email), and every requested field is
//     present in a row, nil where the document lacks it.
//   - Values are stored in their BSON form: int as a 64-bit integer, float
//     as a double, datetime as a BSON date (millisecond precision, read
//     back in UTC), json as an embedded document or array with object keys
//     sorted. Reads convert back to the field's Go type and fail with an
//     internal error for a stored value that does not convert losslessly.
//   - Null follows SQL: a missing field counts as null. eq null and
//     null:true match a null or missing field; ne null and null:false
//     match a present, non-null one; ne, nin and like never match a null
//     field (as col <> v, col NOT IN (...) and col LIKE p do not), and
//     neither do gt, gte, lt and lte.
//   - like is an SQL LIKE pattern, translated to an anchored, case-sensitive
//     regular expression: % matches any run of characters (newlines
//     included), _ exactly one, a backslash makes the next character
//     literal, and every other character is quoted. A pattern can
//     therefore never carry regular-expression syntax of its own. A
//     pattern holding a NUL (which a BSON regular expression cannot
//     hold) is a bad_value.
//   - Filters use explicit operators ($eq, $in, ...) around typed values
//     from store.Build and names from validated templates only, so no
//     request text becomes a field name, an operator or code.
//   - create inserts one document. Its key is the key field's value from
//     the request's data or, for a string key the request leaves out, the
//     event ID; an int key must be given. A duplicate key (or any unique
//     index) is a conflict, also when the key is the event ID and the
//     record was made by anything but this event. A template that stores
//     its key under another name than _id needs a unique index on that
//     field (the generated uq_<stored>, which the schema check looks
//     for), or duplicates made by different events go unnoticed.
//   - Every create and update stamps the documents it writes with its
//     event ID, in the reserved field _beds_event: the event of the last
//     write that touched the document. Reads never return it (rows hold
//     template fields only), filters cannot name it, and no template can
//     store a field under a name starting with _beds (template.Parse
//     refuses it).
//   - Every write is applied once per event ID: it first claims the event
//     in the beds_events collection (a record with the event ID as _id
//     and, for update and delete, the _ids of the documents it will
//     write), then writes, then records its result there. A redelivery
//     answers the recorded result; one that arrives while the first is
//     still running waits for it, up to its own deadline. A claim whose
//     holder stopped without settling it (it died) is taken over
//     ClaimGrace after the holder's deadline, and the takeover finishes
//     the holder's write from its record and the stamps rather than
//     running it again. The exact rules, and what a takeover cannot tell,
//     are on write (idempotency.go).
//   - update sets the request's data ($set, null stores null) on every
//     matching document; delete removes every matching document; both
//     answer not_found when nothing matches, and affected counts the
//     matched documents. The adapter reads the _id of the matching
//     documents first (at most bound+1 with a bound, Query.MaxAffected
//     from limits.max_affected) and then writes only those that still
//     match (see bounded); one that matches more than the bound answers
//     too_large and changes nothing.
//   - Every command carries maxTimeMS from the request's deadline (the
//     driver adds it to all but find, the adapter to find), so the server
//     stops what the caller no longer waits for.
//   - Lineage records (package lineage) go to the beds_lineage collection,
//     one document per event with the event ID as _id, upserted so the
//     latest record of an event wins; trees are read level by level on the
//     parent field, on the primary. Its indexes, BEDS's own, come from
//     deploy/mongo/indexes.json.
//   - The adapter creates no collection, validator or index. A template's
//     come from the mongosh script bedsctl schema gen writes
//     (GenerateSchema, schemagen.go), which the DBA reviews, checks into
//     deploy/mongo and applies; Store.CheckSchema (schemacheck.go)
//     compares a live database with the templates, at a node's start-up
//     and in bedsctl schema check.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/xoptions"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// idKey is MongoDB's primary key field.
const idKey = "_id"

// Defaults for Config fields left zero, unless the URI sets the option.
const (
	DefaultMaxConns               = 16
	DefaultServerSelectionTimeout = 3 * time.Second
	DefaultConnectTimeout         = 5 * time.Second
	DefaultOpTimeout              = 30 * time.Second
)

// Config configures one MongoDB store.
//
// Options set here win over the same options in the URI, which win over
// the defaults.
type Config struct {
	// URI is a mongodb:// or mongodb+srv:// connection string; its path
	// names the database, e.g. mongodb://127.0.0.1:27017/beds.
	URI string
	// MaxConns caps open connections per server (default 16).
	MaxConns uint64
	// ServerSelectionTimeout bounds the wait for a usable server, so a
	// down server answers unavailable instead of hanging (default 3s).
	ServerSelectionTimeout time.Duration
	// ConnectTimeout bounds dialling one connection (default 5s).
	ConnectTimeout time.Duration
	// OpTimeout bounds an Exec whose context has no deadline (default
	// 30s); a context deadline always wins. Either way the server gets
	// the deadline as maxTimeMS.
	OpTimeout time.Duration
}

// Store is a MongoDB store. It is safe for concurrent use.
type Store struct {
	client    *mongo.Client
	db        *mongo.Database
	colls     sync.Map      // collection name -> *mongo.Collection
	opTimeout time.Duration // the deadline of an Exec whose context has none; 0: none
}

var _ store.Store = (*Store)(nil)

// Open validates cfg and creates the client. Like the MariaDB adapter it
// does not wait for the server: the driver connects in the background and
// Ping (the readiness probe) tells when it answers, so a node may start
// before its database. ctx is reserved for a future blocking start-up step
// and is not used today.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	opts, u, err := clientOptions(cfg)
	if err != nil {
		return nil, err
	}
	return openWith(opts, u)
}

// openWith creates the client from validated options.
func openWith(opts *options.ClientOptions, u uriParts) (*Store, error) {
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo %s: %s", u.hosts, u.redact(err.Error()))
	}
	s := &Store{client: client, db: client.Database(u.db)}
	if opts.Timeout != nil {
		s.opTimeout = *opts.Timeout
	}
	return s, nil
}

// clientOptions validates cfg and builds the driver's options.
func clientOptions(cfg Config) (*options.ClientOptions, uriParts, error) {
	u, err := parseURI(cfg.URI)
	if err != nil {
		return nil, u, fmt.Errorf("mongo %s: %w", Addr(cfg.URI), err)
	}
	if u.db == "" {
		return nil, u, fmt.Errorf("mongo %s: the URI names no database: add it as the path, e.g. mongodb://%s/beds", u.hosts, u.hosts)
	}
	if err := checkDBName(u.db); err != nil {
		return nil, u, fmt.Errorf("mongo %s: %w", u.hosts, err)
	}
	opts := options.Client().ApplyURI(cfg.URI)
	switch {
	case cfg.MaxConns > 0:
		opts.SetMaxPoolSize(cfg.MaxConns)
	case opts.MaxPoolSize == nil:
		opts.SetMaxPoolSize(DefaultMaxConns)
	}
	setDuration(cfg.ServerSelectionTimeout, DefaultServerSelectionTimeout, opts.ServerSelectionTimeout, opts.SetServerSelectionTimeout)
	setDuration(cfg.ConnectTimeout, DefaultConnectTimeout, opts.ConnectTimeout, opts.SetConnectTimeout)
	setDuration(cfg.OpTimeout, DefaultOpTimeout, opts.Timeout, opts.SetTimeout)
	if opts.AppName == nil {
		opts.SetAppName("beds")
	}
	return opts, u, nil
}

// setDuration applies v if set, else def unless the URI already set the
// option (fromURI non-nil).
func setDuration(v, def time.Duration, fromURI *time.Duration, set func(time.Duration) *options.ClientOptions) {
	switch {
	case v > 0:
		set(v)
	case fromURI == nil:
		set(def)
	}
}

// Addr returns the host list of a MongoDB URI (host:port, comma-separated
// for several) without credentials, database or options, for log and error
// messages. It never returns any part of the user information; for a URI
// it cannot read it returns "(invalid mongodb URI)".
func Addr(uri string) string {
	u, err := parseURI(uri)
	if err != nil {
		return "(invalid mongodb URI)"
	}
	return u.hosts
}

// uriParts is what the adapter reads from a URI itself.
type uriParts struct {
	hosts    string
	db       string
	userinfo string   // raw, for redaction only
	secrets  []string // the password and secret query values, for redaction only
	srv      bool     // mongodb+srv://: hosts is a DNS name, not servers
}

// parseURI splits a URI the way the driver does: user information up to
// the first @, hosts up to the first / or ?, then the database path.
func parseURI(uri string) (uriParts, error) {
	p := uriParts{secrets: config.URLSecrets(uri)}
	rest, ok := strings.CutPrefix(uri, "mongodb://")
	if !ok {
		if rest, ok = strings.CutPrefix(uri, "mongodb+srv://"); !ok {
			return p, errors.New(`the URI must start with mongodb:// or mongodb+srv://`)
		}
		p.srv = true
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		p.userinfo, rest = rest[:i], rest[i+1:]
	}
	end := strings.IndexAny(rest, "/?@")
	if end < 0 {
		end = len(rest)
	}
	p.hosts = rest[:end]
	if p.hosts == "" {
		return p, errors.New("the URI names no host")
	}
	rest = rest[end:]
	switch {
	case strings.HasPrefix(rest, "@"):
		// An unescaped @ in the user information: what follows the first
		// @ may be part of the password, so name no host.
		p.hosts = "(invalid mongodb URI)"
		return p, errors.New("the URI has an unescaped @ in its user information: percent-encode it as %40")
	case strings.HasPrefix(rest, "?"):
		return p, errors.New("the URI needs a / between the hosts and the options")
	case strings.HasPrefix(rest, "/"):
		path, _, _ := strings.Cut(rest[1:], "?")
		db, err := url.PathUnescape(path)
		if err != nil {
			return p, errors.New("the URI's database name is not properly escaped")
		}
		p.db = db
	}
	return p, nil
}

// redact removes the user information and the secrets of the query
// (tlsCertificateKeyFilePassword, the AWS_SESSION_TOKEN of
// authMechanismProperties, ...: see config.RedactURL) from a driver
// message, which may quote an option's value.
func (p uriParts) redact(msg string) string {
	if p.userinfo != "" {
		msg = strings.ReplaceAll(msg, p.userinfo, "****")
		if _, pass, ok := strings.Cut(p.userinfo, ":"); ok && pass != "" {
			msg = strings.ReplaceAll(msg, pass, "****")
			if plain, err := url.PathUnescape(pass); err == nil && plain != "" {
				msg = strings.ReplaceAll(msg, plain, "****")
			}
		}
	}
	for _, s := range p.secrets {
		msg = strings.ReplaceAll(msg, s, "****")
	}
	return msg
}

// checkDBName applies MongoDB's rules for database names.
func checkDBName(db string) error {
	if len(db) >= 64 {
		return fmt.Errorf("database name %q is longer than 63 bytes", db)
	}
	if strings.ContainsAny(db, "/\\. \"$*<>:|?\x00") {
		return fmt.Errorf("database name %q holds a character MongoDB does not allow (/\\. \"$*<>:|?)", db)
	}
	return nil
}

// Ping checks the server answers; it is the readiness probe.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return classify(nil, err)
	}
	return nil
}

// Close disconnects the client, waiting at most five seconds for
// operations in flight.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

// Database returns the name of the database the store uses.
func (s *Store) Database() string { return s.db.Name() }

// Exec runs q. Every command it sends carries maxTimeMS from ctx's
// deadline (or OpTimeout where ctx has none), so the server stops work
// the caller no longer waits for.
func (s *Store) Exec(ctx context.Context, q *store.Query) (*store.Result, error) {
	if _, ok := ctx.Deadline(); !ok && s.opTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opTimeout)
		defer cancel()
	}
	var res *store.Result
	var err error
	switch q.Op {
	case wire.OpRead:
		res, err = s.read(ctx, q)
	case wire.OpCount:
		res, err = s.count(ctx, q)
	case wire.OpCreate:
		res, err = s.write(ctx, q, s.create)
	case wire.OpUpdate:
		res, err = s.write(ctx, q, s.update)
	case wire.OpDelete:
		res, err = s.write(ctx, q, s.delete)
	default:
		return nil, fmt.Errorf("mongo: op %s is not a data op", q.Op)
	}
	if err != nil {
		return nil, classify(q, err)
	}
	return res, nil
}

// coll returns the handle of the template's collection.
func (s *Store) coll(t *template.Template) *mongo.Collection {
	name := t.Objects.Collection
	if c, ok := s.colls.Load(name); ok {
		return c.(*mongo.Collection)
	}
	c, _ := s.colls.LoadOrStore(name, s.db.Collection(name))
	return c.(*mongo.Collection)
}

func (s *Store) read(ctx context.Context, q *store.Query) (*store.Result, error) {
	coll := q.Template.Objects.Collection
	rows := make([]wire.Row, 0, min(max(q.Limit, 0), 64))
	if q.Limit <= 0 {
		// As LIMIT 0 in SQL: nothing. Build always sets a limit.
		return &store.Result{Rows: rows}, nil
	}
	opts := options.Find().
		SetProjection(projectionDoc(q.Fields)).
		SetLimit(int64(q.Limit)).
		SetBatchSize(int32(min(q.Limit, 10000)))
	if q.Offset > 0 {
		opts.SetSkip(int64(q.Offset))
	}
	if len(q.Sort) > 0 {
		opts.SetSort(sortDoc(q.Sort))
	}
	filter, err := filterOf(q)
	if err != nil {
		return nil, err
	}
	if err := maxTimeFind(ctx, opts); err != nil {
		return nil, err
	}
	cur, err := s.coll(q.Template).Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", coll, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		row, err := decodeRow(cur.Current, q.Fields)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", coll, err)
		}
		rows = append(rows, row)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", coll, err)
	}
	return &store.Result{Rows: rows, Count: int64(len(rows))}, nil
}

func (s *Store) count(ctx context.Context, q *store.Query) (*store.Result, error) {
	filter, err := filterOf(q)
	if err != nil {
		return nil, err
	}
	n, err := s.coll(q.Template).CountDocuments(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("count %s: %w", q.Template.Objects.Collection, err)
	}
	return &store.Result{Count: n}, nil
}

func (s *Store) create(ctx context.Context, q *store.Query, c *claim) (*store.Result, error) {
	t := q.Template
	var key any
	for _, a := range q.Data {
		if a.Field == t.Key {
			key = a.Value
		}
	}
	if key == nil {
		if t.Key.Type != template.TypeString {
			return nil, wire.FieldError(wire.CodeBadValue, t.Key.Name,
				"create must set key %s: an %s key has no generated value on MongoDB", t.Key.Name, t.Key.Type)
		}
		if q.Event == "" {
			return nil, fmt.Errorf("create %s: no key given and no event ID to use as key", t.Name)
		}
		key = q.Event
	}
	if c.takeover {
		landed, err := s.created(ctx, q, key)
		if err != nil {
			return nil, err
		}
		if landed {
			return &store.Result{Affected: 1, Key: key}, nil
		}
	}
	doc := make(bson.D, 0, len(q.Data)+2)
	doc = append(doc, bson.E{Key: t.Key.Stored, Value: key})
	for _, a := range q.Data {
		if a.Field == t.Key {
			continue
		}
		v, err := toBSON(a.Field, a.Value)
		if err != nil {
			return nil, err
		}
		doc = append(doc, bson.E{Key: a.Field.Stored, Value: v})
	}
	doc = append(doc, bson.E{Key: stampField, Value: q.Event})
	if _, err := s.coll(t).InsertOne(ctx, doc); err != nil {
		return nil, fmt.Errorf("create in %s: %w", t.Objects.Collection, err)
	}
	return &store.Result{Affected: 1, Key: key}, nil
}

// created reports whether the dead holder of a create's claim inserted
// its document: one with the key and the event's stamp. A document with
// the key and another stamp is a conflict; the unique index of _id finds
// that on insert, but a key stored elsewhere may have none.
func (s *Store) created(ctx context.Context, q *store.Query, key any) (bool, error) {
	t := q.Template
	coll := s.coll(t)
	only := options.FindOne().SetProjection(bson.D{{Key: idKey, Value: 1}})
	err := coll.FindOne(ctx, bson.D{{Key: t.Key.Stored, Value: key}, {Key: stampField, Value: q.Event}}, only).Err()
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, mongo.ErrNoDocuments):
		return false, fmt.Errorf("create in %s: look for an earlier attempt's record: %w", t.Objects.Collection, err)
	case t.Key.Stored == idKey:
		return false, nil
	}
	err = coll.FindOne(ctx, bson.D{{Key: t.Key.Stored, Value: key}}, only).Err()
	switch {
	case err == nil:
		return false, keyTakenOnTakeover(q)
	case !errors.Is(err, mongo.ErrNoDocuments):
		return false, fmt.Errorf("create in %s: look for an earlier attempt's record: %w", t.Objects.Collection, err)
	}
	return false, nil
}

func (s *Store) update(ctx context.Context, q *store.Query, c *claim) (*store.Result, error) {
	t := q.Template
	set := make(bson.D, 0, len(q.Data)+1)
	for _, a := range q.Data {
		v, err := toBSON(a.Field, a.Value)
		if err != nil {
			return nil, err
		}
		set = append(set, bson.E{Key: a.Field.Stored, Value: v})
	}
	if len(set) == 0 {
		return nil, wire.FieldError(wire.CodeBadRequest, "data", "update needs data: the fields to set")
	}
	set = append(set, bson.E{Key: stampField, Value: q.Event})
	filter, err := filterOf(q)
	if err != nil {
		return nil, err
	}
	var done int64 // recorded documents the dead holder updated
	ids := c.ids
	if c.resume {
		if ids, err = s.unstamped(ctx, q, ids); err != nil {
			return nil, err
		}
		done = int64(len(c.ids) - len(ids))
	} else if err := bounded(q, ids); err != nil {
		return nil, err
	}
	var matched int64
	if len(ids) > 0 {
		res, err := s.coll(t).UpdateMany(ctx, withIDs(filter, ids), bson.D{{Key: "$set", Value: set}})
		if err != nil {
			return nil, fmt.Errorf("update in %s: %w", t.Objects.Collection, err)
		}
		matched = res.MatchedCount
	}
	if done+matched == 0 {
		return nil, wire.Errorf(wire.CodeNotFound, "no %s record matches the filter", t.Name)
	}
	return &store.Result{Affected: done + matched}, nil
}

// unstamped returns those of ids whose documents do not carry q's stamp:
// the ones a dead holder of q's claim did not update (or that another
// write changed since).
func (s *Store) unstamped(ctx context.Context, q *store.Query, ids []bson.RawValue) ([]bson.RawValue, error) {
	t := q.Template
	stamped, err := s.findIDs(ctx, q, bson.D{{Key: idKey, Value: bson.D{{Key: "$in", Value: ids}}}, {Key: stampField, Value: q.Event}}, 0)
	if err != nil {
		return nil, fmt.Errorf("update in %s: find the records an earlier attempt updated: %w", t.Objects.Collection, err)
	}
	seen := make(map[string]bool, len(stamped))
	for _, id := range stamped {
		seen[rawKey(id)] = true
	}
	rest := make([]bson.RawValue, 0, len(ids)-len(stamped))
	for _, id := range ids {
		if !seen[rawKey(id)] {
			rest = append(rest, id)
		}
	}
	return rest, nil
}

// rawKey identifies a BSON value by its type and bytes.
func rawKey(v bson.RawValue) string { return string(rune(v.Type)) + string(v.Value) }

func (s *Store) delete(ctx context.Context, q *store.Query, c *claim) (*store.Result, error) {
	t := q.Template
	filter, err := filterOf(q)
	if err != nil {
		return nil, err
	}
	if !c.resume {
		if err := bounded(q, c.ids); err != nil {
			return nil, err
		}
	}
	res, err := s.coll(t).DeleteMany(ctx, withIDs(filter, c.ids))
	if err != nil {
		return nil, fmt.Errorf("delete in %s: %w", t.Objects.Collection, err)
	}
	affected := res.DeletedCount
	if c.resume {
		// Recorded documents that are gone now were deleted by the dead
		// holder or just now; those left no longer match the filter.
		left, err := s.coll(t).CountDocuments(ctx, bson.D{{Key: idKey, Value: bson.D{{Key: "$in", Value: c.ids}}}})
		if err != nil {
			return nil, fmt.Errorf("delete in %s: count the records left: %w", t.Objects.Collection, err)
		}
		affected = int64(len(c.ids)) - left
	}
	if affected == 0 {
		return nil, wire.Errorf(wire.CodeNotFound, "no %s record matches the filter", t.Name)
	}
	return &store.Result{Affected: affected}, nil
}

// matching reads the _ids of the documents an update or delete would
// change: at most q.MaxAffected+1 of them (all without a bound).
func (s *Store) matching(ctx context.Context, q *store.Query) ([]bson.RawValue, error) {
	filter, err := filterOf(q)
	if err != nil {
		return nil, err
	}
	ids, err := s.findIDs(ctx, q, filter, q.MaxAffected)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: find the matching records: %w", q.Op, q.Template.Objects.Collection, err)
	}
	return ids, nil
}

// findIDs reads the _ids of the documents of q's collection that match
// filter, at most bound+1 of them (all for a bound of 0).
func (s *Store) findIDs(ctx context.Context, q *store.Query, filter bson.D, bound int) ([]bson.RawValue, error) {
	opts := options.Find().SetProjection(bson.D{{Key: idKey, Value: 1}})
	if bound > 0 {
		opts.SetLimit(int64(bound) + 1).SetBatchSize(int32(min(bound+1, 10000)))
	}
	if err := maxTimeFind(ctx, opts); err != nil {
		return nil, err
	}
	cur, err := s.coll(q.Template).Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var ids []bson.RawValue
	for cur.Next(ctx) {
		id, err := cur.Current.LookupErr(idKey)
		if err != nil {
			return nil, fmt.Errorf("a matching document has no _id: %w", err)
		}
		// Current's bytes are the driver's to reuse.
		id.Value = append([]byte(nil), id.Value...)
		ids = append(ids, id)
	}
	return ids, cur.Err()
}

// bounded applies q.MaxAffected to ids, the _ids an update or delete
// found matching (matching): more than MaxAffected is too_large and
// nothing changes; none is not_found. Otherwise the write runs on the
// filter and those _ids both (withIDs), so it never touches more than
// MaxAffected documents.
//
// Other writers may change the collection between the read and the
// write: a listed document that no longer matches is skipped (the filter
// is applied again) and a document that has begun to match is left alone,
// as if the write had run just before it changed. affected counts what the
// write matched.
func bounded(q *store.Query, ids []bson.RawValue) error {
	t := q.Template
	switch {
	case q.MaxAffected > 0 && len(ids) > q.MaxAffected:
		return wire.Errorf(wire.CodeTooLarge,
			"the filter matches more than %d %s records, the most one %s may change: nothing was changed; narrow the filter", q.MaxAffected, t.Name, q.Op)
	case len(ids) == 0:
		return wire.Errorf(wire.CodeNotFound, "no %s record matches the filter", t.Name)
	}
	return nil
}

// withIDs narrows filter to the documents with the given _ids.
func withIDs(filter bson.D, ids []bson.RawValue) bson.D {
	return bson.D{{Key: "$and", Value: bson.A{filter, bson.D{{Key: idKey, Value: bson.D{{Key: "$in", Value: ids}}}}}}}
}

// filterOf translates q's filter. update and delete refuse to run without
// one even if a caller bypassed store.Build, since a missing filter
// matches every document.
func filterOf(q *store.Query) (bson.D, error) {
	if q.Filter == nil && (q.Op == wire.OpUpdate || q.Op == wire.OpDelete) {
		return nil, wire.FieldError(wire.CodeBadRequest, "filter", "%s needs a filter", q.Op)
	}
	return filterDoc(q.Filter)
}

// maxTimeFind makes the server stop a find at ctx's deadline. The driver
// derives maxTimeMS from the deadline for every command except those that
// open a cursor for the caller (Find, Aggregate: DRIVERS-2722, since a
// later getMore could outlive it), so find is bounded here; a read
// fetches its rows within the same deadline, so the server may drop the
// cursor with it. A deadline already passed fails as the driver's own
// check would, and one beyond what the server takes (about 24 days) is
// left to the client as the driver does.
func maxTimeFind(ctx context.Context, o *options.FindOptionsBuilder) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	ms := time.Until(dl).Milliseconds()
	switch {
	case ms <= 0:
		return context.DeadlineExceeded
	case ms > math.MaxInt32:
		return nil
	}
	return xoptions.SetInternalFindOptions(o, "addCommandFields", bson.D{{Key: "maxTimeMS", Value: ms}})
}
