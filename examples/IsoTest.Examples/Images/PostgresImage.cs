namespace IsoTest.Examples.Images;

/// <summary>
/// PostgreSQL from an image, one definition for both backends: Docker runs it from the daemon's images, the built-in
/// engine from its own image store (pulled from a registry, or loaded from an archive as <see cref="LocalImages"/> does).
/// Everything else comes from the image's config, on both: the entrypoint, USER postgres, EXPOSE 5432 (reachable without
/// WithPort), the HEALTHCHECK this wait uses, and STOPSIGNAL SIGINT for PostgreSQL's fast shutdown.
/// </summary>
/// <remarks>
/// The image is <c>isotest/postgres:15-bookworm</c>, which .ci/images.sh builds from Debian's own packages because
/// this machine has no registry; with Docker Hub reachable, <c>postgres:16</c> with <c>Wait.ForLogMessage(..., 2)</c> works the same way.
/// </remarks>
public sealed class PostgresImage : ContainerDefinition
{
    public const string Image = "isotest/postgres:15-bookworm";
    public const string Password = "example";

    public override ContainerBuilder Configure(ContainerBuilder builder) => builder
        .FromImage(Image)
        .WithEnvironment("POSTGRES_PASSWORD", Password)
        .WithMemoryLimit("256m")
        .WaitFor(Wait.ForHealthcheck());

    public static string ConnectionString(IContainer postgres)
    {
        var endpoint = postgres.GetEndpoint(5432);
        return $"Host={endpoint.Host};Port={endpoint.Port};Username=postgres;Password={Password};Database=postgres";
    }
}

/// <summary>
/// Without a registry, the engine's image store gets the image from an archive once per run, as <c>isotest load -i</c>
/// would (Docker's daemon already has it: .ci/images.sh imported it there). An xunit collection fixture.
/// </summary>
public sealed class LocalImages : IAsyncLifetime
{
    /// <summary>The OCI image layout .ci/images.sh writes (ISOTEST_IMAGE_CACHE overrides its directory).</summary>
    public static string Layout => Path.Combine(
        Environment.GetEnvironmentVariable("ISOTEST_IMAGE_CACHE") is { Length: > 0 } cache ? cache : "/var/cache/isotest/images", "oci");

    public async Task InitializeAsync()
    {
        if (ContainerBackends.Default is IsoTest.Engine.EngineBackend engine)
        {
            if (!Directory.Exists(Layout))
            {
                throw new InvalidOperationException($"{Layout} does not exist: run .ci/images.sh as root once (it builds the Debian images from the apt mirror).");
            }

            await engine.LoadImagesAsync(Layout);
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

[CollectionDefinition(nameof(LocalImagesCollection))]
public sealed class LocalImagesCollection : ICollectionFixture<LocalImages>;
