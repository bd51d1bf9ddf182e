//go:build !race

package passkey

const raceEnabled = false
