package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"

	"github.com/lambdaflow/lambdaflow/examples"
	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/lambda"
	"github.com/lambdaflow/lambdaflow/monitor"
	"github.com/lambdaflow/lambdaflow/openapi"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/projects"
)

// requestDrainTimeout bounds how long in-flight HTTP requests may take to
// finish once shutdown begins; jobs get --shutdown-grace on top.
const requestDrainTimeout = 10 * time.Second

func newServeCommand() *cobra.Command {
	cfg := &serveConfig{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Start the HTTP service",
		Long: "Start the HTTP service. Every flag can also be set through an environment variable,\n" +
			"LAMBDAFLOW_ followed by the flag name in upper case with _ for -, such as LAMBDAFLOW_ADDR.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			if err := cfg.finish(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg)
		},
	}
	cfg.bindFlags(cmd.Flags())
	return cmd
}

// server is the running service: database, pool, monitor and HTTP
// server.
type server struct {
	cfg    *serveConfig
	logger *slog.Logger
	db     *database.DB
	// checkpointer moves a SQLite database's WAL into its file, off the
	// commits of requests and jobs. It is nil on PostgreSQL.
	checkpointer *database.Checkpointer
	pool         scheduler
	monitor      *monitor.Monitor
	lambda       *lambda.Service
	http         *http.Server
	ready        atomic.Bool
}

// scheduler is the job pool: a *pool.Pool on a single server, a
// *pool.Cluster on a node of a cluster.
type scheduler interface {
	monitor.Jobs
	Submit(ctx context.Context, sub pool.Submission) (*pool.Job, error)
	Job(ctx context.Context, id string) (*pool.Job, error)
	Await(ctx context.Context, id string) (*pool.Job, error)
	StopJob(ctx context.Context, id, by, reason string) (*pool.Job, error)
	ActiveJobIDs(lockKey string) []string
	Reserve(n int, timeout time.Duration) error
	Settings() pool.Settings
	Register(rg *gin.RouterGroup)
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
	Stop()
}

// serve runs the service until ctx is cancelled, then shuts it down in
// two phases: stop taking requests, then let running jobs finish within
// the grace period before cancelling them.
func serve(ctx context.Context, cfg *serveConfig) error {
	logger := cfg.logger()
	s := &server{cfg: cfg, logger: logger}
	ln, err := s.start(ctx)
	if err != nil {
		return err
	}

	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	s.ready.Store(true)
	if cfg.tokens == nil && cfg.Insecure {
		logger.Warn("serving without API tokens (--insecure), so every caller has full access", "addr", ln.Addr().String())
	}
	logger.Info("lambdaflow serving", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "database", cfg.databaseName(),
		"files_dir", cfg.FilesDir, "concurrent_jobs", s.pool.Settings().ConcurrentJobs,
		"api_tokens", cfg.tokens.Len(), "cluster_node", cfg.NodeName)
	if cfg.serving != nil {
		cfg.serving(ln.Addr().String())
	}

	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	lockLost := make(chan error, 1)
	go s.watchLocks(watchCtx, lockLost)

	select {
	case <-ctx.Done():
		logger.Info("shutting down", "grace", cfg.ShutdownGrace)
	case err := <-errc:
		logger.Error("HTTP server stopped", "error", err)
	case err := <-lockLost:
		logger.Error("another lambdaflow server took this server's database lock after the connection that held it broke; "+
			"shutting down so that no job runs twice", "error", err, "grace", cfg.ShutdownGrace)
		return errors.Join(err, s.shutdown())
	}
	return s.shutdown()
}

// watchLocks takes the node's PostgreSQL advisory locks again whenever
// the connection that held them broke, such as when PostgreSQL
// restarted, until ctx ends. It sends the error to lost when another
// server took a lock meanwhile. A cluster node checks every third of its
// lease, a single server every 5 seconds.
func (s *server) watchLocks(ctx context.Context, lost chan<- error) {
	if s.db.Dialect() != database.Postgres {
		return
	}
	interval := 5 * time.Second
	if s.cfg.Cluster {
		interval = s.cfg.NodeLease / 3
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		checkCtx, cancel := context.WithTimeout(ctx, interval)
		err := s.db.RetakeLocks(checkCtx)
		cancel()
		switch {
		case errors.Is(err, database.ErrNodeLocked) || errors.Is(err, database.ErrNodeNameTaken):
			lost <- err
			return
		case err != nil && ctx.Err() == nil && !failing:
			s.logger.Warn("taking the database lock again failed; retrying", "error", err)
			failing = true
		case err == nil && failing:
			s.logger.Info("database lock taken again")
			failing = false
		}
	}
}

func (s *server) start(ctx context.Context) (net.Listener, error) {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	db, err := s.openDatabase(ctx)
	if err != nil {
		return nil, err
	}
	s.db = db
	if db.Dialect() == database.SQLite {
		s.checkpointer = database.NewCheckpointer(db, 0, s.logger)
		if err := s.checkpointer.Start(ctx); err != nil {
			return nil, s.abort(err)
		}
	}
	projectStore := projects.NewSQLStore(db)
	if cfg.Examples {
		n, err := examples.Install(ctx, cfg.FilesDir, projectStore)
		if err != nil {
			return nil, s.abort(fmt.Errorf("installing examples: %w", err))
		}
		if n > 0 {
			s.logger.Info("example projects stored", "count", n)
		}
	} else if err := os.MkdirAll(cfg.FilesDir, 0o755); err != nil {
		return nil, s.abort(fmt.Errorf("creating files directory: %w", err))
	}

	outputRoot := filepath.Join(cfg.DataDir, "jobs")
	executor := projects.NewExecutor(projects.ExecutorConfig{
		FilesDir: cfg.FilesDir, OutputRoot: outputRoot, ResultRows: cfg.ResultRows, Logger: s.logger,
	})
	poolCfg := pool.Config{
		ConcurrentJobs: cfg.ConcurrentJobs, QueueLimit: cfg.QueueLimit,
		OutputRoot: outputRoot, JobTimeout: cfg.JobTimeout, MaxJobTimeout: cfg.MaxJobTimeout, Logger: s.logger,
	}
	if cfg.Cluster {
		s.pool, err = pool.NewCluster(pool.ClusterConfig{Config: poolCfg, Node: cfg.NodeName,
			Lease: cfg.NodeLease, Poll: cfg.ClusterPoll}, db, executor)
	} else {
		s.pool, err = pool.New(poolCfg, pool.NewSQLStore(db), executor)
	}
	if err != nil {
		return nil, s.abort(err)
	}
	// The monitor observes the pool before it starts, so that it
	// receives the events of the jobs the pool recovers.
	monitorCfg := monitor.Config{
		Interval: cfg.MonitorInterval, History: cfg.MonitorHistory, RecentJobs: cfg.MonitorRecentJobs,
		DataDir: cfg.DataDir, Logger: s.logger,
	}
	samples := monitor.NewSQLSampleStore(db)
	if cluster, ok := s.pool.(*pool.Cluster); ok {
		monitorCfg.Node, monitorCfg.Cluster = cfg.NodeName, cluster
		samples = samples.ForNode(cfg.NodeName)
	}
	s.monitor, err = monitor.New(monitorCfg, s.pool, samples)
	if err != nil {
		return nil, s.abort(err)
	}
	if err := s.pool.Start(ctx); err != nil {
		return nil, s.abort(fmt.Errorf("starting pool: %w", err))
	}
	if err := s.monitor.Start(ctx); err != nil {
		s.pool.Stop()
		return nil, s.abort(fmt.Errorf("starting monitor: %w", err))
	}

	if err := s.startLambda(ctx, projectStore); err != nil {
		s.monitor.Stop()
		s.pool.Stop()
		return nil, s.abort(err)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		s.lambda.Stop()
		s.monitor.Stop()
		s.pool.Stop()
		return nil, s.abort(fmt.Errorf("listening on %s: %w", cfg.Addr, err))
	}
	api := projects.NewAPI(projectStore, s.pool, projects.APIConfig{MaxDefinitionBytes: cfg.MaxBodyBytes, Logger: s.logger})
	s.http = &http.Server{Handler: s.router(api), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
	// Shutdown waits for active handlers, and event streams never end on
	// their own.
	s.http.RegisterOnShutdown(s.monitor.CloseStreams)
	return ln, nil
}

// openDatabase opens the PostgreSQL database of --database, taking its
// node lock, or else the SQLite file in the data directory.
func (s *server) openDatabase(ctx context.Context) (*database.DB, error) {
	if s.cfg.Database == "" {
		return database.OpenWith(ctx, filepath.Join(s.cfg.DataDir, "lambdaflow.db"),
			database.Options{BackgroundCheckpoints: true})
	}
	if s.cfg.Cluster {
		return database.OpenPostgresClusterNode(ctx, s.cfg.Database, s.cfg.NodeName)
	}
	// A single server keeps its queue in memory, so two of them on one
	// database would run the same jobs twice. The node lock rejects the
	// second.
	return database.OpenPostgresNode(ctx, s.cfg.Database)
}

func (s *server) startLambda(ctx context.Context, projectStore projects.Store) error {
	cfg := s.cfg
	var err error
	s.lambda, err = lambda.New(lambda.Config{
		MaxWait: cfg.LambdaMaxWait, InstanceRetention: cfg.InstanceRetention,
		IdempotencyRetention: cfg.IdempotencyRetention, MaxBatch: cfg.LambdaMaxBatch,
		MaxUploadBytes: cfg.MaxUploadBytes, MaxBodyBytes: cfg.MaxBodyBytes, SweepInterval: cfg.LambdaSweepInterval,
		FilesDir: cfg.FilesDir, Logger: s.logger,
	}, lambda.NewSQLStore(s.db), projectStore, s.pool)
	if err != nil {
		return err
	}
	if err := s.lambda.Start(ctx); err != nil {
		return fmt.Errorf("starting lambda service: %w", err)
	}
	return nil
}

func (s *server) abort(err error) error {
	s.checkpointer.Stop()
	s.db.Close()
	return err
}

func (s *server) router(api *projects.API) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Unknown paths get a 404 problem document, not an HTML redirect.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	// Client addresses (recorded as who stopped a job) come from the
	// connection, not from X-Forwarded-For headers anyone can send.
	_ = r.SetTrustedProxies(nil)
	r.Use(httpapi.Middleware(s.logger.With("component", "http")))
	if s.cfg.tokens != nil {
		r.Use(accessMiddleware(s.cfg.tokens))
	}
	r.Use(bodyLimitMiddleware(s.cfg.MaxBodyBytes, s.cfg.MaxUploadBytes))
	r.NoRoute(noRoute)
	r.NoMethod(noMethod)

	r.GET("/healthz", healthz)
	r.GET("/readyz", s.readyz)
	s.monitor.RegisterMetrics(r)

	v1 := r.Group("/api/v1")
	api.Register(v1)
	s.pool.Register(v1)
	s.lambda.Register(v1)
	s.monitor.Register(v1)
	s.lambda.RegisterWorkflowRoutes(r)
	openapi.RegisterUI(r)
	monitor.RegisterAdmin(r)
	return r
}

// HealthStatus is the body of /healthz and /readyz.
type HealthStatus struct {
	// Status is "ok" on /healthz and "ready" on /readyz.
	Status string `json:"status" enums:"ok,ready" example:"ok"`
}

// healthz godoc
//
//	@Summary		Liveness probe
//	@Description	Returns 200 while the process serves HTTP. It needs no token.
//	@ID				healthz
//	@Tags			health
//	@Produce		json
//	@Success		200	{object}	HealthStatus
//	@Router			/healthz [get]
func healthz(c *gin.Context) {
	c.JSON(http.StatusOK, HealthStatus{Status: "ok"})
}

// readyz godoc
//
//	@Summary		Readiness probe
//	@Description	Returns 200 while the service takes work, 503 SHUTTING_DOWN while it starts or shuts down, and 503 DATABASE_UNAVAILABLE while its database does not respond within a second. It needs no token.
//	@ID				readyz
//	@Tags			health
//	@Produce		json
//	@Success		200	{object}	HealthStatus
//	@Failure		503	{object}	httpapi.Problem	"SHUTTING_DOWN or DATABASE_UNAVAILABLE"
//	@Router			/readyz [get]
func (s *server) readyz(c *gin.Context) {
	if !s.ready.Load() {
		httpapi.WriteError(c, httpapi.NewProblem(http.StatusServiceUnavailable, httpapi.CodeShuttingDown, "the service is not ready"))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		// The error names the database's host, which this public route
		// does not show.
		httpapi.WriteError(c, httpapi.NewProblem(http.StatusServiceUnavailable, httpapi.CodeDatabaseUnavailable,
			"the database is unavailable"))
		return
	}
	c.JSON(http.StatusOK, HealthStatus{Status: "ready"})
}

// shutdown stops intake, drains running jobs within the grace period,
// cancels what is left and closes the database. The pool stops starting
// jobs first, so that no job starts after the signal, while in-flight
// HTTP requests finish.
func (s *server) shutdown() error {
	s.ready.Store(false)
	s.lambda.Drain()
	grace, cancelGrace := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancelGrace()
	poolErr := make(chan error, 1)
	go func() { poolErr <- s.pool.Shutdown(grace) }()

	ctx, cancel := context.WithTimeout(context.Background(), requestDrainTimeout)
	defer cancel()
	httpErr := s.http.Shutdown(ctx)
	if errors.Is(httpErr, context.DeadlineExceeded) {
		httpErr = s.http.Close()
	}
	drainErr := <-poolErr
	// Jobs cancelled by the drain still remove their instances, which
	// writes to the database, so the lambda service stops after the pool.
	s.lambda.Stop()
	// The monitor samples into the database, so it stops before the
	// database closes.
	s.monitor.Stop()
	if errors.Is(drainErr, context.DeadlineExceeded) {
		s.logger.Warn("grace period ended; the jobs still running were cancelled", "grace", s.cfg.ShutdownGrace)
		drainErr = nil
	}
	s.checkpointer.Stop()
	err := errors.Join(httpErr, drainErr, s.db.Close())
	s.logger.Info("lambdaflow stopped")
	return err
}
