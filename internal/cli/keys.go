package cli

import (
	"context"
	"fmt"
	"io"
)

var keyCommands = []command{
	{"keys rotate", "", "add a new token signing key; older keys keep verifying until their tokens expire", keysRotate},
	{"keys list", "", "list token signing keys", keysList},
}

func keysRotate(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	k, err := c.RotateKey(ctx)
	if err != nil {
		return err
	}
	return inv.print(k, func(w io.Writer) {
		fmt.Fprintln(w, "New signing key in use; older keys verify until their last token expires.")
		kv(w, "kid", k.ID, "alg", k.Algorithm, "created", fmtTime(k.CreatedAt))
	})
}

func keysList(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return err
	}
	return inv.print(keys, func(w io.Writer) {
		rows := make([][]string, 0, len(keys))
		for _, k := range keys {
			state := "signing"
			if !k.RetiredAt.IsZero() {
				state = "verifying only since " + fmtTime(k.RetiredAt)
			}
			rows = append(rows, []string{k.ID, k.Algorithm, fmtTime(k.CreatedAt), state})
		}
		table(w, []string{"KID", "ALG", "CREATED", "STATE"}, rows)
	})
}
