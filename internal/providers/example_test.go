package providers_test

import (
	"fmt"

	"github.com/jwtrevoke/jwtrevoke/internal/providers"
)

// A providers file with one provider whose keys come from discovery and
// whose back-channel logout tokens the revoker takes.
func ExampleParse() {
	ps, err := providers.Parse([]byte(`{"providers": [{
	  "name": "hydra",
	  "issuer": "https://login.example.com/",
	  "discovery": true,
	  "audiences": ["api"],
	  "algorithms": ["RS256"],
	  "session_claim": "sid",
	  "backchannel_logout": {"client_id": "my-client"}
	}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p := ps[0]
	fmt.Println(p.Name, p.Issuer, p.Discovery, p.BackchannelLogout.ClientID)

	_, err = providers.Parse([]byte(`{"providers": [{"name": "hydra", "issuer": "https://login.example.com/"}]}`))
	fmt.Println(err)
	// Output:
	// hydra https://login.example.com/ true my-client
	// providers[0] (hydra): give exactly one of "jwks_url" and "discovery": true
}
