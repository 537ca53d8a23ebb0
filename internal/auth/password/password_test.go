package password

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if err := Check(h); err != nil {
		t.Fatal(err)
	}
	h2, _ := Hash("correct horse")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct hors": false, "": false, strings.Repeat("x", MaxLength+1): false} {
		if ok, err := Verify(h, pw); err != nil || ok != want {
			t.Errorf("Verify(%.20q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
}

func TestBcryptVariants(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		h := prefix + string(b[4:])
		if err := Check(h); err != nil {
			t.Errorf("%s: %v", prefix, err)
		}
		if ok, err := Verify(h, "s3cret"); !ok || err != nil {
			t.Errorf("%s: Verify = %v, %v", prefix, ok, err)
		}
		if ok, _ := Verify(h, "S3cret"); ok {
			t.Errorf("%s: a wrong password matched", prefix)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	const salt, key = "c2FsdHNhbHRzYWx0", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"
	for _, c := range []struct{ hash, want string }{
		{"", "not an argon2id"},
		{"hunter2", "not an argon2id"},
		{"$argon2i$v=19$m=65536,t=3,p=4$" + salt + "$" + key, "use argon2id"},
		{"$argon2id$v=16$m=65536,t=3,p=4$" + salt + "$" + key, "version"},
		{"$argon2id$v=19$m=65536,t=3$" + salt + "$" + key, "needs m, t and p"},
		{"$argon2id$v=19$m=4194304,t=3,p=4$" + salt + "$" + key, "memory"},
		{"$argon2id$v=19$m=65536,t=0,p=4$" + salt + "$" + key, "time"},
		{"$argon2id$v=19$m=65536,t=3,p=0$" + salt + "$" + key, "parallelism"},
		{"$argon2id$v=19$m=65536,t=3,p=4$!!$" + key, "salt"},
		{"$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$YQ", "hash must be"},
		{"$argon2id$v=19$m=65536,t=3,p=4$" + salt, "malformed"},
		{"$2b$10$tooshort", "malformed bcrypt"},
		{"$2b$31$" + strings.Repeat("a", 53), "cost"},
	} {
		err := Check(c.hash)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%q) = %v, want an error with %q", c.hash, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), key) {
			t.Errorf("Check(%q) quotes the hash: %v", c.hash, err)
		}
	}
	if err := Check("$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + key); err != nil {
		t.Errorf("a valid PHC string refused: %v", err)
	}
}
