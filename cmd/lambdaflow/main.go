// Command lambdaflow runs data workflows on request through a FIFO pool of
// slots. `lambdaflow serve` starts the service.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "lambdaflow:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "lambdaflow",
		Short:         "Run data workflows on request, in parallel, through one FIFO pool",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand())
	return root
}
