package database

import (
	"io/fs"
	"path"
)

// Rebind exposes rebind to the tests.
var Rebind = rebind

// MigrationNames returns the file names of the SQLite and the PostgreSQL
// migrations, each sorted.
func MigrationNames() (sqlite, postgres []string) {
	sqlite, _ = fs.Glob(sqliteMigrations, "migrations/*.sql")
	postgres, _ = fs.Glob(postgresMigrations, "migrations/postgres/*.sql")
	for i := range sqlite {
		sqlite[i] = path.Base(sqlite[i])
	}
	for i := range postgres {
		postgres[i] = path.Base(postgres[i])
	}
	return sqlite, postgres
}
