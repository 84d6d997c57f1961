namespace IsoTest.Xunit;

/// <summary>
/// Declares that tests need a container described by a <see cref="ContainerDefinition"/>. Place it on a test
/// method (a fresh container for that test), a test class (one container shared by the class's tests), a
/// <c>[CollectionDefinition]</c> class (shared by the collection) or the assembly (shared by all tests).
/// The container reaches the test as a method parameter or a constructor parameter of type <see cref="IContainer"/>.
/// Needs the IsoTest test framework: <c>[assembly: UseIsoTest]</c>.
/// </summary>
/// <remarks>
/// With one declaration in reach, any <see cref="IContainer"/> parameter receives it. With several, a parameter is
/// matched by its name: to <see cref="Name"/>, else to the definition's type name (<c>IContainer redis</c> ↔ <c>Redis</c>,
/// also without a <c>Definition</c>, <c>Container</c> or <c>Fixture</c> suffix). Every declaration in reach of a test is
/// started before it runs, all at once, whether or not the test takes it as a parameter.
/// </remarks>
/// <example>
/// <code>
/// [assembly: UseIsoTest]
///
/// public class CacheTests
/// {
///     [Fact, ContainerFixture(typeof(Redis))]
///     public async Task Stores(IContainer redis) { var endpoint = redis.GetEndpoint(6379); ... }
/// }
///
/// [ContainerFixture(typeof(Postgres))]   // one container for all tests of the class
/// public class QueryTests(IContainer postgres) { ... }
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Class | AttributeTargets.Method, AllowMultiple = true, Inherited = true)]
public sealed class ContainerFixtureAttribute : Attribute
{
    /// <summary>Declares a container described by <paramref name="definition"/>.</summary>
    /// <param name="definition">A non-abstract subclass of <see cref="ContainerDefinition"/> with a public parameterless constructor.</param>
    public ContainerFixtureAttribute(Type definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        Definition = definition;
    }

    /// <summary>The <see cref="ContainerDefinition"/> subclass that describes the container.</summary>
    public Type Definition { get; }

    /// <summary>
    /// Tells apart several containers of the same definition (<c>Name = "primary"</c>); a parameter with this name receives it.
    /// Two declarations with the same definition and name in reach of a test are the same container.
    /// </summary>
    public string? Name { get; set; }

    /// <summary>How long the container lives; by default it follows where the attribute is placed (see <see cref="Xunit.Lifetime.Default"/>).</summary>
    public Lifetime Lifetime { get; set; }

    /// <summary>
    /// Writes the container's output to the test's output even when the test passes (it is always written when the test fails).
    /// For shared containers, only the lines written while the test ran.
    /// </summary>
    public bool ShowOutput { get; set; }
}
