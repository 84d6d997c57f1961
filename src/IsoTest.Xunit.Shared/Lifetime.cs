namespace IsoTest.Xunit;

/// <summary>How long a <see cref="ContainerFixtureAttribute"/> container lives, and so which tests share it.</summary>
public enum Lifetime
{
    /// <summary>
    /// Follows where the attribute is placed: <see cref="Test"/> on a method, <see cref="Class"/> on a class,
    /// <see cref="Collection"/> on a <c>[CollectionDefinition]</c> class, <see cref="Assembly"/> on the assembly.
    /// </summary>
    Default = 0,

    /// <summary>A fresh container for every test, removed when the test ends.</summary>
    Test,

    /// <summary>One container shared by the tests of a class, removed when the class's last test ends.</summary>
    Class,

    /// <summary>One container shared by the tests of a test collection, removed when the collection ends.</summary>
    Collection,

    /// <summary>One container shared by every test of the assembly, removed when the test run ends.</summary>
    Assembly,
}
