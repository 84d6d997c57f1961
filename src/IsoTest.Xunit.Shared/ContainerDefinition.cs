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
}
