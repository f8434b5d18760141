package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
)

func (a *app) configCmd() *cobra.Command {
	var output string
	export := &cobra.Command{
		Use:   "export [--output FILE]",
		Short: "print the whole configuration as one JSON document",
		Long: `export prints netshare's whole configuration (connections, their sharing,
firewall, DHCP settings and port mappings, and the DNS settings) as one JSON
document, with the revision it was read at. Edit it and give it to
'netshare config apply'.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			doc, err := a.manager().Config(c.Context())
			if err != nil {
				return err
			}
			data, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				return hresult.New(hresult.Unexpected, "encoding the document: %w", err)
			}
			data = append(data, '\n')
			if output == "" || output == "-" {
				_, err := a.env.Stdout.Write(data)
				return err
			}
			if err := os.WriteFile(output, data, 0o600); err != nil {
				return hresult.New(hresult.Fail, "writing %s: %w", output, err)
			}
			written := struct {
				Revision string `json:"revision"`
				File     string `json:"file"`
			}{doc.Revision, output}
			return a.out(written, func(w io.Writer) {
				fmt.Fprintf(w, "configuration at revision %s written to %s\n", doc.Revision, output)
			})
		},
	}
	export.Flags().StringVarP(&output, "output", "o", "", "write the document to `FILE` (mode 0600) instead of stdout")

	var dryRun, force bool
	apply := &cobra.Command{
		Use:   "apply FILE [--dry-run] [--force]",
		Short: "make the configuration what a document says, all or nothing",
		Long: `apply reads a document as 'netshare config export' writes it (FILE, or - for
stdin), checks all of it, and makes the configuration what it says in one
step: everything, or nothing if anything is wrong. A connection the document
leaves out goes back to the defaults. It prints each change.

A document read at another revision than the current one is refused, since
applying it would undo changes made since; export again, or --force.
--dry-run prints the changes and makes none.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			doc, err := readDocument(args[0])
			if err != nil {
				return err
			}
			res, err := a.manager().ApplyConfig(c.Context(), doc, dryRun, force)
			if err != nil {
				return err
			}
			return a.out(res, func(w io.Writer) {
				verb := "applied"
				if res.DryRun {
					verb = "would apply (dry run)"
				}
				switch len(res.Changes) {
				case 0:
					fmt.Fprintf(w, "no changes: the configuration is already what %s says (revision %s)\n", args[0], res.Config.Revision)
					return
				case 1:
					fmt.Fprintf(w, "1 change %s:\n", verb)
				default:
					fmt.Fprintf(w, "%d changes %s:\n", len(res.Changes), verb)
				}
				for _, ch := range res.Changes {
					fmt.Fprintf(w, "  %s\n", ch)
				}
				if !res.DryRun {
					fmt.Fprintf(w, "now at revision %s\n", res.Config.Revision)
				}
			})
		},
	}
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "print the changes, make none")
	apply.Flags().BoolVar(&force, "force", false, "apply the document even if the configuration changed since it was read")
	return group("config", "the whole configuration as one document", export, apply)
}

// maxDocument bounds a document read by apply.
const maxDocument = 64 << 20

// readDocument reads and decodes a configuration document; unknown fields
// are refused, naming them.
func readDocument(path string) (hnetcfg.Config, error) {
	var doc hnetcfg.Config
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, maxDocument+1))
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			data, err = io.ReadAll(io.LimitReader(f, maxDocument+1))
			f.Close()
		}
	}
	if err != nil {
		return doc, hresult.New(hresult.InvalidArg, "reading %s: %w", path, err)
	}
	if len(data) > maxDocument {
		return doc, hresult.New(hresult.InvalidArg, "%s: larger than %d MiB", path, maxDocument>>20)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return doc, hresult.New(hresult.InvalidArg, "%s is not a configuration document: %w", path, err)
	}
	if dec.More() {
		return doc, hresult.New(hresult.InvalidArg, "%s: one JSON document is allowed", path)
	}
	return doc, nil
}
