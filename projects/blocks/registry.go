package blocks

// registry maps each block type to its kind.
var registry = buildRegistry(
	csvReadKind, jsonReadKind, inlineKind,
	filterKind, computeKind, selectKind, limitKind, sortKind,
	aggregateKind, joinKind,
	appendKind, assertKind, delayKind,
	csvWriteKind, jsonWriteKind,
)

func buildRegistry(kinds ...Kind) map[string]Kind {
	byType := make(map[string]Kind, len(kinds))
	for _, kind := range kinds {
		if _, duplicate := byType[kind.Type]; duplicate {
			panic("blocks: kind " + kind.Type + " registered twice")
		}
		byType[kind.Type] = kind
	}
	return byType
}

// Lookup returns the kind of block type typ, such as "csv.read", and
// whether it exists.
func Lookup(typ string) (Kind, bool) {
	kind, ok := registry[typ]
	return kind, ok
}

// Types returns every block type in sorted order.
func Types() []string {
	return sortedKeys(registry)
}
