using System.Collections.Immutable;
using IsoTest.Modules;

namespace IsoTest.Modules.Http;

/// <summary>
/// Declares a fake HTTP service: <c>busybox httpd</c> serving the files the test gives (<see cref="WithFile(string, string)"/>)
/// and CGI scripts for answers that depend on the request (<see cref="WithScript"/>). Immutable; readiness built in
/// (the first GET of <c>/</c> that answers).
/// </summary>
public sealed class HttpServerBuilder
{
    /// <summary>The port httpd listens on inside the container.</summary>
    public const int Port = 8080;

    /// <summary>The image run on either backend unless <see cref="WithImage"/> or <see cref="ImageVariable"/> names another.</summary>
    public const string DefaultImage = "busybox:1.36";

    /// <summary>
    /// <c>ISOTEST_HTTP_IMAGE</c>: the image the default root runs instead of <see cref="DefaultImage"/>, for machines that
    /// have another busybox image but no registry (CI's <c>isotest/busybox:latest</c>, made from Debian's busybox-static).
    /// Any image with <c>busybox</c> on its PATH will do.
    /// </summary>
    public const string ImageVariable = "ISOTEST_HTTP_IMAGE";

    private static readonly ModuleImage Image = new("HTTP", DefaultImage, ImageVariable, "the host's installed busybox");

    private const string Root = "/www";
    private const UnixFileMode Executable = (UnixFileMode)0b111_101_101; // 0755: httpd runs CGI scripts as any user

    private readonly ModuleRoot _root;
    private readonly ImmutableList<(string Path, byte[] Content, bool Script)> _files = [];
    private readonly IContainerBackend? _backend;
    private readonly Func<ContainerBuilder, ContainerBuilder>? _customize;

    /// <summary>An empty site on the default backend.</summary>
    public HttpServerBuilder()
    {
    }

    private HttpServerBuilder(ModuleRoot root, ImmutableList<(string, byte[], bool)> files, IContainerBackend? backend, Func<ContainerBuilder, ContainerBuilder>? customize)
    {
        _root = root;
        _files = files;
        _backend = backend;
        _customize = customize;
    }

    /// <summary>Serves <paramref name="content"/> at <paramref name="urlPath"/> (e.g. <c>/api/users.json</c>); httpd picks the content type from the extension.</summary>
    public HttpServerBuilder WithFile(string urlPath, string content) => WithFile(urlPath, System.Text.Encoding.UTF8.GetBytes(content ?? throw new ArgumentNullException(nameof(content))));

    /// <summary>Serves <paramref name="content"/> at <paramref name="urlPath"/>.</summary>
    public HttpServerBuilder WithFile(string urlPath, byte[] content) => Add(urlPath, content, script: false);

    /// <summary>
    /// Answers <c>/cgi-bin/<paramref name="name"/></c> by running <paramref name="shellScript"/> (busybox sh) as a CGI script: it
    /// prints the headers, an empty line and the body; the request is in <c>$REQUEST_METHOD</c>, <c>$QUERY_STRING</c> and stdin.
    /// </summary>
    public HttpServerBuilder WithScript(string name, string shellScript)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"A CGI script name is one path segment (it is served at /cgi-bin/NAME); '{name}' has a '/'.", nameof(name));
        }

        return Add("/cgi-bin/" + name, System.Text.Encoding.UTF8.GetBytes("#!/bin/sh\n" + shellScript), script: true);
    }

    /// <summary>Runs <paramref name="image"/> (any image with <c>busybox</c> on its PATH).</summary>
    public HttpServerBuilder WithImage(string image) => new(new ModuleRoot(ModuleRootKind.Image, image), _files, _backend, _customize);

    /// <summary>Runs the host's installed <c>busybox</c> instead of an image (the built-in engine only): no image needed.</summary>
    public HttpServerBuilder FromHost() => new(new ModuleRoot(ModuleRootKind.Host, null), _files, _backend, _customize);

    /// <summary>Runs on <paramref name="backend"/> instead of the default (<c>ISOTEST_BACKEND</c>).</summary>
    public HttpServerBuilder WithBackend(IContainerBackend backend) => new(_root, _files, backend ?? throw new ArgumentNullException(nameof(backend)), _customize);

    /// <summary>Anything else on the container: applied after the module's own settings.</summary>
    public HttpServerBuilder WithContainer(Func<ContainerBuilder, ContainerBuilder> customize) =>
        new(_root, _files, _backend, customize ?? throw new ArgumentNullException(nameof(customize)));

    /// <summary>Configures <paramref name="builder"/> as this server (for an IsoTest.Xunit <c>ContainerDefinition</c>).</summary>
    public ContainerBuilder Configure(ContainerBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var configured = _root.Apply(builder, _backend, Image);

        // httpd answers 404 for / without an index; readiness only needs an answer, so an empty index is there unless given.
        var files = _files.Any(f => f.Path == "/index.html") ? _files : _files.Add(("/index.html", [], false));
        foreach (var (path, content, script) in files)
        {
            configured = configured.WithFile(Root + path, content, script ? Executable : null);
        }

        configured = configured
            .WithCommand("busybox", "httpd", "-f", "-v", "-p", $"{Port}", "-h", Root)
            .WithPort(Port)
            .WaitFor(Wait.ForHttp("/", Port, (_, _) => true));
        return _customize is null ? configured : _customize(configured);
    }

    /// <summary>The container, not started yet.</summary>
    public HttpServerContainer Build() => new(Configure(new ContainerBuilder()));

    /// <summary>Starts the server and returns once it answers.</summary>
    public async Task<HttpServerContainer> StartAsync(CancellationToken cancellationToken = default)
    {
        var server = Build();
        await server.StartAsync(cancellationToken).ConfigureAwait(false);
        return server;
    }

    /// <summary>The base address of an HTTP server <paramref name="container"/> (for definitions): <c>http://127.0.0.1:PORT/</c>.</summary>
    public static Uri GetBaseAddress(IContainer container)
    {
        ArgumentNullException.ThrowIfNull(container);
        var endpoint = container.GetEndpoint(Port);
        return new Uri($"http://{endpoint}/");
    }

    private HttpServerBuilder Add(string urlPath, byte[] content, bool script)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (string.IsNullOrEmpty(urlPath) || urlPath[0] != '/' || urlPath.EndsWith('/') || urlPath.Split('/').Any(s => s is ".." or "."))
        {
            throw new ArgumentException($"'{urlPath}' is not a file's URL path: start with '/', name a file (not a directory), no '.' or '..' segments, e.g. /api/users.json.", nameof(urlPath));
        }

        return new(_root, _files.Add((urlPath, content, script)), _backend, _customize);
    }
}
