package command

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// DevUser is the system administrator `jobengine dev` creates to log in
// to the dashboard and the API with.
const DevUser = "dev"

// devCredentials gives the development user a new random password (it is
// created the first time) and returns it. The password is printed to the
// terminal that started dev and kept nowhere else but as its hash.
func devCredentials(ctx context.Context, zc zkconn.Config, log *zap.Logger) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zc)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	secret := make([]byte, 12)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(secret)
	users := access.NewStore(conn, log.Named("access"))
	_, err = users.CreateUser(ctx, access.NewUser{Name: DevUser, Role: access.SystemAdmin, Password: pw,
		Description: "the development user of jobengine dev"})
	if errors.Is(err, configstore.ErrExists) {
		err = users.SetPassword(ctx, DevUser, pw)
	}
	if err != nil {
		return "", fmt.Errorf("creating the development user %s: %w", DevUser, err)
	}
	return pw, nil
}
