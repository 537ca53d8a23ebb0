package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/slipway-dev/slipway/internal/auth"
)

// chromiumPath is Debian's chromium package; the tests never download a browser.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test and returns a tab's context, bounded by timeout.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("%s is missing: apt-get install -y chromium", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return tab
}

// browse runs actions in the tab and fails the test with what it was doing.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// value runs one action that reads something, failing the test with what it was reading.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// colorScheme makes the page's prefers-color-scheme scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

// usersYAML is the auth section with one user per role; every password is the user's name
// with a suffix, hashed the way the server checks it.
func usersYAML(t *testing.T, roles map[string]string) string {
	t.Helper()
	y := "auth:\n  cookie_secure: false\n  users:\n"
	for name, role := range roles {
		h, err := auth.HashPassword(userPassword(name))
		if err != nil {
			t.Fatal(err)
		}
		y += fmt.Sprintf("    - {name: %s, role: %s, password_hash: '%s'}\n", name, role, h)
	}
	return y
}

func userPassword(user string) string { return user + "-e2e-password" }

// login fills the login form and waits for the services page it leads to.
func login(t *testing.T, ctx context.Context, base, user string) {
	t.Helper()
	browse(t, ctx, "log in as "+user,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), userPassword(user)),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(fmt.Sprintf(`//header//span[contains(@class,"user") and contains(., %q)]`, user)),
	)
}

// artifactsDir is where screenshots go: $SLIPWAY_ARTIFACTS/screenshots, or the repository's
// test-artifacts/screenshots.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "test-artifacts", "screenshots")
	if a := os.Getenv("SLIPWAY_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var screenSizes = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"desktop", 1280, 800, false},
	{"phone", 375, 812, true},
}

// screenshots saves the page as it is, light and dark, at desktop and phone widths, as
// dir/page-scheme-size.png, checks each is a PNG of the width asked for, and puts the tab back
// to light at desktop width.
func screenshots(t *testing.T, ctx context.Context, dir, page string) {
	t.Helper()
	for _, scheme := range []string{"light", "dark"} {
		for _, s := range screenSizes {
			vp := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
			if s.mobile {
				vp = append(vp, chromedp.EmulateMobile)
			}
			what := fmt.Sprintf("screenshot %s %s %s", page, scheme, s.name)
			browse(t, ctx, what, colorScheme(scheme), chromedp.EmulateViewport(s.width, s.height, vp...))
			buf := value(t, ctx, what, chromedp.FullScreenshot(100)) // quality 100: PNG
			name := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.png", page, scheme, s.name))
			cfg, err := png.DecodeConfig(bytes.NewReader(buf))
			if err != nil || len(buf) == 0 {
				t.Errorf("screenshot %s: not a PNG (%d bytes): %v", name, len(buf), err)
				continue
			}
			if int64(cfg.Width) != s.width {
				t.Logf("screenshot %s is %dpx wide at a %dpx viewport: the page overflows sideways", name, cfg.Width, s.width)
			}
			if err := os.WriteFile(name, buf, 0o644); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(name); err != nil || fi.Size() == 0 {
				t.Errorf("screenshot %s is empty: %v", name, err)
			}
		}
	}
	browse(t, ctx, "reset emulation",
		colorScheme("light"), chromedp.EmulateViewport(1280, 800),
	)
}
