package mariadb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/beds-project/beds/shared/template"
)

// bindValue converts a query value to what the driver binds.
func bindValue(f *template.Field, v any) any {
	if v == nil {
		return nil
	}
	if f.Type == template.TypeJSON {
		if raw, ok := v.(json.RawMessage); ok {
			return string(raw)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		return string(b)
	}
	return v
}

func convertColumn(f *template.Field, src any) (any, error) {
	switch f.Type {
	case template.TypeString:
		switch x := src.(type) {
		case []byte:
			return string(x), nil
		case string:
			return x, nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		}
	case template.TypeInt:
		switch x := src.(type) {
		case int64:
			return x, nil
		case uint64:
			if x <= math.MaxInt64 {
				return int64(x), nil
			}
		case []byte:
			return strconv.ParseInt(string(x), 10, 64)
		}
	case template.TypeFloat:
		switch x := src.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case []byte:
			return strconv.ParseFloat(string(x), 64)
		}
	case template.TypeBool:
		switch x := src.(type) {
		case int64:
			return x != 0, nil
		case bool:
			return x, nil
		case []byte:
			n, err := strconv.ParseInt(string(x), 10, 64)
			return n != 0, err
		}
	case template.TypeDatetime:
		switch x := src.(type) {
		case time.Time:
			return x.UTC(), nil
		case []byte:
			return time.ParseInLocation("2006-01-02 15:04:05.999999", string(x), time.UTC)
		}
	case template.TypeJSON:
		switch x := src.(type) {
		case []byte:
			if json.Valid(x) {
				return json.RawMessage(bytes.Clone(x)), nil
			}
			return string(x), nil
		case string:
			if json.Valid([]byte(x)) {
				return json.RawMessage(x), nil
			}
			return x, nil
		}
	}
	return nil, fmt.Errorf("cannot hold a %T", src)
}

// keyValue converts a generated key to the key field's type.
func keyValue(f *template.Field, v any) any {
	switch x := v.(type) {
	case []byte:
		if f.Type == template.TypeInt {
			if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return n
			}
		}
		return string(x)
	case uint64:
		return int64(x)
	}
	return v
}
