using System.Reflection;
using IsoTest.Xunit.Fixtures;
using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Sdk;

/// <summary>
/// xunit's discovery, except that a <c>[Fact]</c> whose parameters are all <see cref="IContainer"/> is a normal test
/// (xunit reports "[Fact] methods are not allowed to have parameters"): IsoTest supplies those arguments when it runs.
/// Theory rows discovered ahead are named after their containers' definitions instead of xunit's <c>???</c>.
/// </summary>
internal sealed class ContainerTestFrameworkDiscoverer(IXunitTestAssembly testAssembly) : XunitTestFrameworkDiscoverer(testAssembly)
{
    private static readonly ContainerFactDiscoverer s_facts = new();

    protected override async ValueTask<bool> FindTestsForMethod(
        IXunitTestMethod testMethod, ITestFrameworkDiscoveryOptions discoveryOptions, Func<ITestCase, ValueTask<bool>> discoveryCallback)
    {
        ArgumentNullException.ThrowIfNull(testMethod);
        ArgumentNullException.ThrowIfNull(discoveryCallback);
        if (testMethod.Parameters.Count > 0
            && !testMethod.IsGenericMethodDefinition
            && testMethod.Parameters.All(p => p.ParameterType == typeof(IContainer))
            && testMethod.FactAttributes.Count == 1
            && UsesFactDiscoverer(testMethod.FactAttributes.First()))
        {
            return await discoveryCallback(s_facts.Create(discoveryOptions, testMethod, testMethod.FactAttributes.First()));
        }

        return await base.FindTestsForMethod(testMethod, discoveryOptions, testCase => discoveryCallback(Named(testCase)));
    }

    // [Fact] and attributes derived from it that keep its discoverer; [Theory] and custom discoverers keep their own rules.
    private static bool UsesFactDiscoverer(IFactAttribute fact) =>
        fact.GetType().GetCustomAttribute<XunitTestCaseDiscovererAttribute>()?.Type == typeof(FactDiscoverer);

    /// <summary>A theory row whose name has <c>???</c> for its IContainer arguments, renamed after their definitions; anything else as it is.</summary>
    private static ITestCase Named(ITestCase testCase)
    {
        if (testCase.GetType() != typeof(XunitTestCase) || testCase is not XunitTestCase row)
        {
            return testCase;
        }

        var name = FixtureDisplayName.For(row.TestCaseDisplayName, row.TestMethod.TestClass.Class, row.TestMethod.Method, row.TestCollection.CollectionDefinition);
        if (name == row.TestCaseDisplayName)
        {
            return testCase;
        }

        return new XunitTestCase(
            row.TestMethod,
            name,
            row.UniqueID,
            row.Explicit,
            row.TestLabel,
            row.DisableParallelization,
            row.SkipExceptions,
            row.SkipReason,
            row.SkipType,
            row.SkipUnless,
            row.SkipWhen,
            row.Traits.ToDictionary(t => t.Key, t => new HashSet<string>(t.Value), StringComparer.OrdinalIgnoreCase),
            row.TestMethodArguments,
            row.SourceFilePath,
            row.SourceLineNumber,
            row.Timeout);
    }

    /// <summary>xunit's own fact test case, for a fact whose parameters IsoTest fills.</summary>
    private sealed class ContainerFactDiscoverer : FactDiscoverer
    {
        public IXunitTestCase Create(ITestFrameworkDiscoveryOptions discoveryOptions, IXunitTestMethod testMethod, IFactAttribute factAttribute) =>
            CreateTestCase(discoveryOptions, testMethod, factAttribute);
    }
}
