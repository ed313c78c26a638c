package supply

import "errors"

// Provenance is what an npm provenance attestation proved. (Temporary declaration of helper
// P's API so that branch wt-n compiles before the merge; the lead deletes this file.)
type Provenance struct {
	Summary   string
	Publisher string // the trusted publisher matched; "" none
}

// Sigstore verifies Sigstore bundles against a trusted root. (Temporary; see Provenance.)
type Sigstore struct{}

// VerifyNPMProvenance verifies an npm attestations document. (Temporary; see Provenance.)
func (s *Sigstore) VerifyNPMProvenance(attestations []byte, name, version string, sha512 []byte) (Provenance, error) {
	return Provenance{}, errors.New("not built yet")
}
