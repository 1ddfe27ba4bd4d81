package issuer

import (
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// dummyHash returns a bcrypt hash of a random password at the highest cost
// among users, compared against for unknown user names so that a login for
// an unknown user costs as long as one with a wrong password.
func dummyHash(users map[string][]byte) ([]byte, error) {
	cost := bcrypt.MinCost
	for name, h := range users {
		c, err := bcrypt.Cost(h)
		if err != nil {
			return nil, fmt.Errorf("%w: Users[%q]: not a bcrypt hash: %w", ErrInvalidConfig, name, err)
		}
		cost = max(cost, c)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	if err != nil {
		return nil, fmt.Errorf("issuer: dummy hash: %w", err)
	}
	return h, nil
}
