package sql

import (
	"context"
	gosql "database/sql"
	"errors"

	"github.com/go-sql-driver/mysql"
)

// MySQL error numbers the writer retries: the server rolled the statement
// (1205) or the whole transaction (1213) back, so running it again is safe.
const (
	errLockWaitTimeout = 1205
	errDeadlock        = 1213
)

// Out-of-range errors: a sum went past its column's maximum. The writer
// answers them by saturating the sum (see clamper), not by quarantine.
const (
	errOutOfRange       = 1690 // ER_DATA_OUT_OF_RANGE: BIGINT UNSIGNED value is out of range
	errColumnOutOfRange = 1264 // ER_WARN_DATA_OUT_OF_RANGE in strict mode
)

// statementErrors are server errors that say nothing about the rows of a
// statement: the same statement with any other rows fails the same way (no
// privilege, no such table or column, a read-only or stopping server, a
// killed or interrupted query, too many connections, a full disk). Isolating
// rows would only quarantine every one of them, so they fail the whole
// write, which is restored and retried at the next flush, loudly.
var statementErrors = map[uint16]bool{
	1021: true, // disk full
	1030: true, // got error from storage engine
	1036: true, // table is read only
	1040: true, // too many connections
	1044: true, // access denied to database
	1045: true, // access denied
	1047: true, // unknown command
	1053: true, // server shutdown in progress
	1054: true, // unknown column
	1064: true, // syntax error
	1099: true, // table locked with a READ lock
	1100: true, // table not locked with LOCK TABLES
	1105: true, // unknown error
	1114: true, // table is full
	1142: true, // command denied to user
	1143: true, // column command denied
	1146: true, // table doesn't exist
	1152: true, // aborted connection
	1153: true, // packet bigger than max_allowed_packet
	1158: true, // network read error
	1159: true, // network read timeout
	1160: true, // network write error
	1161: true, // network write timeout
	1180: true, // got error during COMMIT
	1181: true, // got error during ROLLBACK
	1203: true, // max_user_connections
	1223: true, // global read lock
	1226: true, // resource limit exceeded
	1227: true, // needs SUPER (or another privilege)
	1290: true, // --read-only and the like
	1317: true, // query execution was interrupted
	1792: true, // read-only transaction
	1836: true, // running in read-only mode
	1927: true, // connection was killed
	1969: true, // max_statement_time exceeded (MariaDB)
	3024: true, // max_execution_time exceeded (MySQL)
	4031: true, // idle session killed (MariaDB)
}

// retryable reports whether err is a deadlock or lock wait timeout: the
// server has rolled the statement back, so running it again is safe.
func retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == errDeadlock || me.Number == errLockWaitTimeout)
}

// rowError reports whether err is the server refusing a statement for
// something in its rows, which retrying cannot fix: out of range, data too
// long, a bad value, a foreign key, a CHECK constraint, a trigger the
// catalog added that SIGNALs. The writer then isolates the rows at fault
// (Writer.writeRange). Every server error counts except the retryable ones
// and statementErrors; client-side numbers (2000-2999, such as 2013 "lost
// connection", which a proxy may send) are connection problems, as are
// errors that are not the server's at all.
func rowError(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	n := me.Number
	return n != errDeadlock && n != errLockWaitTimeout && !statementErrors[n] && (n < 2000 || n >= 3000)
}

// outOfRange reports whether err is a sum past its column's maximum.
func outOfRange(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == errOutOfRange || me.Number == errColumnOutOfRange)
}

// commitNotSent reports whether an error from tx.Commit means the COMMIT
// never reached the server: database/sql checks the transaction's context
// before sending it, and a transaction its context already rolled back is
// done. Any other error leaves the outcome unknown.
func commitNotSent(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, gosql.ErrTxDone)
}
