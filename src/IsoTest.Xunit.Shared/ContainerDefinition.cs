namespace IsoTest.Xunit;

/// <summary>
/// Describes a container a test needs. Subclass it once per kind of container and name the subclass in
/// <see cref="ContainerFixtureAttribute"/>; IsoTest creates an instance (it needs a public parameterless
/// constructor), configures a fresh <see cref="ContainerBuilder"/> with it and starts the container.
/// </summary>
/// <example>
/// <code>
/// public sealed class Redis : ContainerDefinition
/// {
///     public override ContainerBuilder Configure(ContainerBuilder builder) => builder
///         .FromHost()
///         .WithCommand("redis-server", "--port", "6379", "--save", "")
///         .WithPort(6379)
///         .WaitFor(Wait.ForPort(6379));
/// }
/// </code>
/// </example>
public abstract class ContainerDefinition
{
    /// <summary>
    /// Configures the container. <paramref name="builder"/> already carries a unique name and IsoTest labels;
    /// the backend is the default one (<c>ISOTEST_BACKEND</c>) unless this method calls <see cref="ContainerBuilder.WithBackend"/>.
    /// Do not set a fixed name with <see cref="ContainerBuilder.WithName"/>: tests run in parallel and names must be unique.
    /// </summary>
    /// <param name="builder">A builder to extend; return the configured builder.</param>
    public abstract ContainerBuilder Configure(ContainerBuilder builder);

    /// <summary>
    /// Runs once the container is ready (its wait strategy passed), before any test sees it: seed a database,
    /// create a bucket. When it throws, the container is removed and the tests that needed it fail with the reason.
    /// </summary>
    /// <param name="container">The running container.</param>
    /// <param name="cancellationToken">Cancelled when <see cref="StartTimeout"/> elapses or the test run ends.</param>
    public virtual Task OnStartedAsync(IContainer container, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// The longest that creating, starting, waiting for readiness and <see cref="OnStartedAsync"/> may take together
    /// before the tests that need the container fail (default 2 minutes). Readiness waits keep their own, usually shorter, timeouts.
    /// </summary>
    public virtual TimeSpan StartTimeout => TimeSpan.FromMinutes(2);

    /// <summary>
    /// For a per-test fixture: how many containers IsoTest may start ahead, while earlier tests run, for the tests of
    /// this run that will ask for this definition. Each is still fresh and used by one test only; it just starts
    /// sooner. Worth it when the tests mostly wait (on I/O, on the network) and cores are idle meanwhile; when the tests
    /// keep every core busy, a start ahead only competes with them (bench -- suite: 200 PostgreSQL tests on 2 cores took
    /// as long with 2 ahead as with none). Default 0: each container starts when its test begins. Shared lifetimes
    /// (class, collection, assembly) start once anyway and ignore it.
    /// </summary>
    public virtual int Prestart => DefaultPrestart;

    /// <summary>The default of <see cref="Prestart"/>: 0, no container started ahead.</summary>
    public static int DefaultPrestart => 0;
}
