package warden

// AllDigits reports whether s is one or more ASCII digits, 0 to 9: the digit rule of every
// number warden reads from text it is given (a budget's limit, a Cedar argument), so that no
// sign, space, underscore or non-ASCII digit that strconv or another reader might take slips
// into a number that policy or a budget judges.
func AllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
