package ansible

// Credential is what a run needs of a credential: the arguments and
// environment it adds, the files it writes, and its secrets, to redact.
// Credential objects implement it (engine/credential).
type Credential interface {
	// Name names the credential in errors.
	Name() string
	// Secrets returns every secret value, to redact from output.
	Secrets() []string
}

// materialized is what credentials add to a run.
type materialized struct {
	args    []string
	env     map[string]string
	cleanup func()
}

func materialize(dir string, creds []Credential) (*materialized, error) {
	return &materialized{env: map[string]string{}, cleanup: func() {}}, nil
}
