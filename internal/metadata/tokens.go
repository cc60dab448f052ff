package metadata

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// RobotToken is the record of one robot token: never the token itself,
// only what identifies it and whether it is revoked.
type RobotToken struct {
	// ID is the token's jti.
	ID string
	// Subject is the user it authenticates as.
	Subject          string
	Created, Expires time.Time
	// Revoked is when it was revoked; zero while it is not.
	Revoked time.Time
}

// UnknownTokensError names token ids RevokeTokens found no record of.
type UnknownTokensError struct{ IDs []string }

func (e *UnknownTokensError) Error() string {
	return fmt.Sprintf("no robot token with id %s (berth admin token list shows them)", strings.Join(e.IDs, ", "))
}

// RecordToken records a robot token as it is created.
func (s *Store) RecordToken(ctx context.Context, t RobotToken) error {
	return s.tx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO robot_tokens(id, subject, created, expires) VALUES(?, ?, ?, ?)`,
			t.ID, t.Subject, t.Created.Unix(), t.Expires.Unix())
		return err
	})
}

// ListTokens returns every recorded robot token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]RobotToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, subject, created, expires, revoked FROM robot_tokens ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RobotToken
	for rows.Next() {
		var t RobotToken
		var created, expires, revoked int64
		if err := rows.Scan(&t.ID, &t.Subject, &created, &expires, &revoked); err != nil {
			return nil, err
		}
		t.Created, t.Expires = time.Unix(created, 0), time.Unix(expires, 0)
		if revoked != 0 {
			t.Revoked = time.Unix(revoked, 0)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeTokens marks the tokens revoked at at, all or none: an id with no
// record is an *UnknownTokensError and nothing changes. Revoking a token
// again keeps its first revocation time.
func (s *Store) RevokeTokens(ctx context.Context, ids []string, at time.Time) error {
	return s.tx(ctx, func(tx *txn) error {
		var unknown []string
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `UPDATE robot_tokens SET revoked = CASE WHEN revoked = 0 THEN ? ELSE revoked END WHERE id = ?`, at.Unix(), id)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				unknown = append(unknown, id)
			}
		}
		if len(unknown) > 0 {
			return &UnknownTokensError{IDs: unknown}
		}
		return nil
	})
}

// RevokedTokens returns the ids of revoked tokens that have not expired by
// now (an expired token fails verification anyway, so the set berth serve
// keeps in memory stays as small as the live revocations).
func (s *Store) RevokedTokens(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM robot_tokens WHERE revoked <> 0 AND expires >= ? ORDER BY id`, now.Add(-time.Minute).Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
