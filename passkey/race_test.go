//go:build race

package passkey

const raceEnabled = true
