using IsoTest.Modules;

namespace IsoTest.Modules.Redis;

/// <summary>
/// Declares a Redis server: <c>await new RedisBuilder().StartAsync()</c>, then <see cref="RedisContainer.GetConnectionString"/>.
/// Immutable: every <c>With...</c> returns a new builder. Readiness is built in (the server's "Ready to accept connections").
/// </summary>
public sealed class RedisBuilder
{
    /// <summary>The port Redis listens on inside the container.</summary>
    public const int Port = 6379;

    /// <summary>The image run on either backend unless <see cref="WithImage"/> or <see cref="ImageVariable"/> names another.</summary>
    public const string DefaultImage = "redis:7";

    /// <summary>
    /// <c>ISOTEST_REDIS_IMAGE</c>: the image the default root runs instead of <see cref="DefaultImage"/>, for machines that
    /// have another Redis image but no registry (CI's <c>isotest/redis:7-bookworm</c>, Debian's redis-server built by
    /// .ci/images.sh). Any image with <c>redis-server</c> on its PATH will do.
    /// </summary>
    public const string ImageVariable = "ISOTEST_REDIS_IMAGE";

    private static readonly ModuleImage Image = new("Redis", DefaultImage, ImageVariable, "the host's installed redis-server");

    private readonly ModuleRoot _root;
    private readonly string? _password;
    private readonly IContainerBackend? _backend;
    private readonly Func<ContainerBuilder, ContainerBuilder>? _customize;

    /// <summary>A Redis from <see cref="DefaultImage"/> (or <see cref="ImageVariable"/>'s image) on the default backend.</summary>
    public RedisBuilder()
    {
    }

    private RedisBuilder(ModuleRoot root, string? password, IContainerBackend? backend, Func<ContainerBuilder, ContainerBuilder>? customize)
    {
        _root = root;
        _password = password;
        _backend = backend;
        _customize = customize;
    }

    /// <summary>Runs <paramref name="image"/> (any image with <c>redis-server</c> on its PATH), on either backend that has images.</summary>
    public RedisBuilder WithImage(string image) => new(new ModuleRoot(ModuleRootKind.Image, image), _password, _backend, _customize);

    /// <summary>Runs the host's installed <c>redis-server</c> instead of an image (the built-in engine only): no image needed.</summary>
    public RedisBuilder FromHost() => new(new ModuleRoot(ModuleRootKind.Host, null), _password, _backend, _customize);

    /// <summary>Runs <c>redis-server</c> from a directory holding a root filesystem.</summary>
    public RedisBuilder FromDirectory(string rootFileSystem) => new(new ModuleRoot(ModuleRootKind.Directory, rootFileSystem), _password, _backend, _customize);

    /// <summary>Requires <paramref name="password"/> (Redis's <c>requirepass</c>); the connection string carries it.</summary>
    public RedisBuilder WithPassword(string password)
    {
        ArgumentException.ThrowIfNullOrEmpty(password);
        return new(_root, password, _backend, _customize);
    }

    /// <summary>Runs on <paramref name="backend"/> instead of the default (<c>ISOTEST_BACKEND</c>).</summary>
    public RedisBuilder WithBackend(IContainerBackend backend) => new(_root, _password, backend ?? throw new ArgumentNullException(nameof(backend)), _customize);

    /// <summary>Anything else on the container (caps, labels, a name): applied after the module's own settings.</summary>
    public RedisBuilder WithContainer(Func<ContainerBuilder, ContainerBuilder> customize) =>
        new(_root, _password, _backend, customize ?? throw new ArgumentNullException(nameof(customize)));

    /// <summary>The password, or null.</summary>
    public string? Password => _password;

    /// <summary>
    /// Configures <paramref name="builder"/> as this Redis: for an IsoTest.Xunit <c>ContainerDefinition</c>
    /// (<c>public override ContainerBuilder Configure(ContainerBuilder b) => new RedisBuilder().Configure(b);</c>).
    /// </summary>
    public ContainerBuilder Configure(ContainerBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var configured = _root.Apply(builder, _backend, Image);

        // 0.0.0.0 and no protected mode: Docker's port publishing reaches the server from outside its loopback. No
        // persistence: a test server's data ends with it.
        var command = new List<string> { "redis-server", "--port", $"{Port}", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no" };
        if (_password is not null)
        {
            command.AddRange(["--requirepass", _password]);
        }

        configured = configured
            .WithCommand([.. command])
            .WithPort(Port)
            .WaitFor(Wait.ForLogMessage("Ready to accept connections"));
        return _customize is null ? configured : _customize(configured);
    }

    /// <summary>The container, not started yet.</summary>
    public RedisContainer Build() => new(Configure(new ContainerBuilder()), _password);

    /// <summary>Starts the server and returns once it accepts connections.</summary>
    public async Task<RedisContainer> StartAsync(CancellationToken cancellationToken = default)
    {
        var redis = Build();
        await redis.StartAsync(cancellationToken).ConfigureAwait(false);
        return redis;
    }

    /// <summary>A StackExchange.Redis configuration string for a Redis <paramref name="container"/> (for definitions).</summary>
    public static string GetConnectionString(IContainer container, string? password = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        var endpoint = container.GetEndpoint(Port);
        return password is null ? $"{endpoint}" : $"{endpoint},password={password}";
    }
}
