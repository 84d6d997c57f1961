using IsoTest.Modules;

namespace IsoTest.Modules.PostgreSql;

/// <summary>
/// Declares a PostgreSQL server: <c>await new PostgreSqlBuilder().WithDatabase("app").StartAsync()</c>, then
/// <see cref="PostgreSqlContainer.GetConnectionString"/>. Immutable; readiness built in.
/// </summary>
/// <remarks>
/// By default it runs <see cref="DefaultImage"/> (or <see cref="ImageVariable"/>'s image) on either backend. On the built-in
/// engine <c>initdb</c> runs once per process, root and set of credentials, into a template; every server starts on a
/// private copy-on-write view of it, so each test gets a fresh database in well under a second and no write reaches the
/// template. That holds for an image (its <c>postgres</c> run directly, not its entrypoint) and for the host's programs
/// (<see cref="FromHost"/>). On Docker, which has no copy-on-write mounts, the image's entrypoint creates the database from
/// <c>POSTGRES_USER</c>, <c>POSTGRES_PASSWORD</c> and <c>POSTGRES_DB</c>.
/// </remarks>
public sealed class PostgreSqlBuilder
{
    /// <summary>The port PostgreSQL listens on inside the container.</summary>
    public const int Port = 5432;

    /// <summary>The image run on either backend unless <see cref="WithImage"/> or <see cref="ImageVariable"/> names another.</summary>
    public const string DefaultImage = "postgres:16";

    /// <summary>
    /// <c>ISOTEST_POSTGRES_IMAGE</c>: the image the default root runs instead of <see cref="DefaultImage"/>, for machines that
    /// have another PostgreSQL image but no registry (CI's <c>isotest/postgres:15-bookworm</c>, built from Debian's packages
    /// by .ci/images.sh). Any image that follows the official image's conventions will do (a <c>postgres</c> user, the
    /// server programs on its PATH, the <c>POSTGRES_*</c> variables on Docker).
    /// </summary>
    public const string ImageVariable = "ISOTEST_POSTGRES_IMAGE";

    internal static readonly ModuleImage Image = new("PostgreSQL", DefaultImage, ImageVariable, "the host's installed PostgreSQL");

    internal const string DataDirectory = "/var/lib/postgresql/data";

    private const string Ready = "database system is ready to accept connections";

    private readonly ModuleRoot _root;
    private readonly IContainerBackend? _backend;
    private readonly Func<ContainerBuilder, ContainerBuilder>? _customize;

    /// <summary>Database <c>postgres</c>, user <c>postgres</c>, password <c>postgres</c>, on the default backend.</summary>
    public PostgreSqlBuilder()
    {
    }

    private PostgreSqlBuilder(ModuleRoot root, string database, string username, string password, IContainerBackend? backend, Func<ContainerBuilder, ContainerBuilder>? customize)
    {
        _root = root;
        Database = database;
        Username = username;
        Password = password;
        _backend = backend;
        _customize = customize;
    }

    /// <summary>The database the connection string names.</summary>
    public string Database { get; } = "postgres";

    /// <summary>The superuser's name.</summary>
    public string Username { get; } = "postgres";

    /// <summary>The superuser's password.</summary>
    public string Password { get; } = "postgres";

    /// <summary>Creates and names database <paramref name="database"/>.</summary>
    public PostgreSqlBuilder WithDatabase(string database) => new(_root, Identifier(database, nameof(database)), Username, Password, _backend, _customize);

    /// <summary>The superuser is <paramref name="username"/>.</summary>
    public PostgreSqlBuilder WithUsername(string username) => new(_root, Database, Identifier(username, nameof(username)), Password, _backend, _customize);

    /// <summary>The superuser's password is <paramref name="password"/>.</summary>
    public PostgreSqlBuilder WithPassword(string password)
    {
        ArgumentException.ThrowIfNullOrEmpty(password);
        return new(_root, Database, Username, password, _backend, _customize);
    }

    /// <summary>Runs <paramref name="image"/> (the official postgres image's conventions) instead of <see cref="DefaultImage"/>.</summary>
    public PostgreSqlBuilder WithImage(string image) => new(new ModuleRoot(ModuleRootKind.Image, image), Database, Username, Password, _backend, _customize);

    /// <summary>Runs the host's installed PostgreSQL (PATH, else /usr/lib/postgresql/VERSION/bin) instead of an image, from a copy-on-write template (the built-in engine only).</summary>
    public PostgreSqlBuilder FromHost() => new(new ModuleRoot(ModuleRootKind.Host, null), Database, Username, Password, _backend, _customize);

    /// <summary>Runs PostgreSQL from a directory holding a root filesystem with the server at the host's paths (template as for the host).</summary>
    public PostgreSqlBuilder FromDirectory(string rootFileSystem) => new(new ModuleRoot(ModuleRootKind.Directory, rootFileSystem), Database, Username, Password, _backend, _customize);

    /// <summary>Runs on <paramref name="backend"/> instead of the default (<c>ISOTEST_BACKEND</c>).</summary>
    public PostgreSqlBuilder WithBackend(IContainerBackend backend) => new(_root, Database, Username, Password, backend ?? throw new ArgumentNullException(nameof(backend)), _customize);

    /// <summary>Anything else on the container: applied after the module's own settings.</summary>
    public PostgreSqlBuilder WithContainer(Func<ContainerBuilder, ContainerBuilder> customize) =>
        new(_root, Database, Username, Password, _backend, customize ?? throw new ArgumentNullException(nameof(customize)));

    /// <summary>
    /// Configures <paramref name="builder"/> as this server (for an IsoTest.Xunit <c>ContainerDefinition</c>). On the built-in
    /// engine the first call per process, root and credentials runs initdb (a few seconds); later ones reuse the template.
    /// </summary>
    public ContainerBuilder Configure(ContainerBuilder builder) =>
        // Configure is synchronous (ContainerDefinition's); the template is made off any synchronization context.
        Task.Run(() => ConfigureAsync(builder, CancellationToken.None)).GetAwaiter().GetResult();

    /// <summary>The container, not started yet (on the built-in engine the template is made here).</summary>
    public async Task<PostgreSqlContainer> BuildAsync(CancellationToken cancellationToken = default) =>
        new(await ConfigureAsync(new ContainerBuilder(), cancellationToken).ConfigureAwait(false), Database, Username, Password);

    /// <summary>Starts the server and returns once it accepts connections.</summary>
    public async Task<PostgreSqlContainer> StartAsync(CancellationToken cancellationToken = default)
    {
        var postgres = await BuildAsync(cancellationToken).ConfigureAwait(false);
        await postgres.StartAsync(cancellationToken).ConfigureAwait(false);
        return postgres;
    }

    /// <summary>An Npgsql connection string for a PostgreSQL <paramref name="container"/> made with these credentials.</summary>
    public string GetConnectionString(IContainer container)
    {
        ArgumentNullException.ThrowIfNull(container);
        return ConnectionString(container, Database, Username, Password);
    }

    internal static string ConnectionString(IContainer container, string database, string username, string password)
    {
        var endpoint = container.GetEndpoint(Port);
        return $"Host={endpoint.Host};Port={endpoint.Port};Database={database};Username={username};Password={password}";
    }

    private async Task<ContainerBuilder> ConfigureAsync(ContainerBuilder builder, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var backend = _backend ?? ContainerBackends.Default;
        var configured = _root.Apply(builder, _backend, Image);

        if (_root.IsImage && ModuleRoot.IsDocker(backend))
        {
            // The official image's entrypoint runs initdb and a temporary server first, so "ready" appears twice.
            configured = configured
                .WithEnvironment("POSTGRES_USER", Username)
                .WithEnvironment("POSTGRES_PASSWORD", Password)
                .WithEnvironment("POSTGRES_DB", Database)
                .WithPort(Port)
                .WaitFor(Wait.ForLogMessage(Ready, times: 2));
        }
        else
        {
            var template = await PostgreSqlTemplate.GetAsync(_root, backend, Username, Password, Database, cancellationToken).ConfigureAwait(false);
            configured = configured
                .WithUser(template.OsUser)
                .WithCopyOnWriteMount(template.DataDirectory, DataDirectory)
                // The template is open to everyone (so whoever owns its files, its maker can delete it); PostgreSQL wants
                // its data directory to be its own alone, and this server's view of it is (chmod changes only the upper dir).
                .WithEntrypoint("/bin/sh", "-c", $"chmod 0700 {DataDirectory} && exec \"$0\" \"$@\"", template.Server)
                .WithCommand("-D", DataDirectory, "-k", "/tmp", "-p", $"{Port}", "-c", "listen_addresses=*",
                    // A test database never needs to survive a crash: skip what makes writes durable.
                    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
                .WithPort(Port)
                .WaitFor(Wait.ForLogMessage(Ready));
        }

        return _customize is null ? configured : _customize(configured);
    }

    private static string Identifier(string value, string parameter)
    {
        ArgumentException.ThrowIfNullOrEmpty(value, parameter);
        return value.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !char.IsAsciiDigit(value[0]) && value.Length <= 63
            ? value
            : throw new ArgumentException($"'{value}' is not a plain PostgreSQL identifier: use letters, digits and '_' (not starting with a digit), at most 63 characters.", parameter);
    }
}
