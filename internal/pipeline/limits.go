package pipeline

// Limits on a pipeline file. The file comes from a repository, so anyone who can push there
// controls it; the limits keep a hostile file from costing the server more than a few milliseconds
// and megabytes, while sitting far above anything a real monorepo needs. web/static/pipeline.schema.json
// repeats the per-field ones.
const (
	// MaxFileSize is the largest pipeline file Parse accepts, in bytes. A reader can stop at
	// MaxFileSize+1 bytes.
	MaxFileSize = 1 << 20
	// MaxServices is the most services one file may define.
	MaxServices = 200

	// maxTokens bounds the YAML token count. goccy/go-yaml's parser is quadratic in the size of one
	// block mapping (about 0.4 s for 10,000 keys), so the count is checked before parsing.
	maxTokens = 50_000
	// maxFlowDepth bounds nesting of [ and { before parsing: the parser is quadratic in it too, and
	// recursive, and no valid file nests more than five levels.
	maxFlowDepth = 64
	// maxSiblingLines bounds the lines at one indentation level under one parent, and so the keys
	// of one block mapping, where the parser is quadratic (see checkSiblings).
	maxSiblingLines = 1000
	// maxErrors caps the problems reported for one file.
	maxErrors = 100

	maxEnvironments = 50   // per service
	maxPaths        = 100  // entries in paths
	maxMapEntries   = 200  // build_args, env
	maxListItems    = 256  // ports, command
	maxPathLen      = 1024 // paths, dockerfile, context
	maxRefLen       = 255  // image (Docker's own limit), branch
	maxKeyLen       = 256  // build_args and env names
	maxValueLen     = 32 << 10
	maxArgLen       = 4096 // one command argument

	maxHealthTimeoutSeconds = 3600
)
