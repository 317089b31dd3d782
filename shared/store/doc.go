// Package store defines what a data store adapter implements and the query
// model every adapter receives.
//
// A request becomes a Query in one place, Build: every field name is
// checked against the template, every value is converted to the field's
// type, and every operator is one of a closed set. Adapters therefore see
// only template fields (with their validated stored names), typed Go values
// and known operators; they never see request text where a name belongs.
package store
