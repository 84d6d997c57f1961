using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace IsoTest.Xunit.Analyzers;

/// <summary>
/// Decides whether IsoTest.Xunit supplies a test's parameters at run time, mirroring its discoverer (ContainerTestFrameworkDiscoverer)
/// and runner (ContainerTestRunner): an <c>IContainer</c> parameter is supplied when exactly one declaration in reach matches it.
/// </summary>
internal static class SuppliedParameters
{
    /// <summary>
    /// A <c>[Fact]</c> whose parameters are all <c>IContainer</c>s (xUnit1001): IsoTest's discoverer runs it as a test when it has
    /// exactly one fact attribute that uses xunit's FactDiscoverer and is not generic. Whether each parameter then gets a
    /// container is <see cref="UnboundParameters"/>'s question; xunit's "make it a Theory" is the wrong advice either way.
    /// </summary>
    public static bool IsContainerFact(IMethodSymbol method, KnownTypes types)
    {
        if (method.IsGenericMethod || method.Parameters.Length == 0 || !method.Parameters.All(types.IsContainer))
        {
            return false;
        }

        var facts = method.GetAttributes().Where(a => types.IsFactOrDerived(a.AttributeClass)).ToArray();
        return facts.Length == 1 && UsesFactDiscoverer(facts[0].AttributeClass, types);
    }

    /// <summary>The parameters of <paramref name="method"/> that get no container, with the declarations in reach of it.</summary>
    public static (IReadOnlyList<IParameterSymbol> Unbound, IReadOnlyList<Declaration> Visible) UnboundParameters(IMethodSymbol method, FixtureReach reach)
    {
        var visible = reach.For(method.ContainingType, method);
        return (method.Parameters.Where(p => !FixtureReach.Binds(p, visible)).ToArray(), visible);
    }

    /// <summary>
    /// A data row with fewer values than the theory has parameters (xUnit1009, xUnit1037): IsoTest fills the parameters after
    /// the row's values when they are all <c>IContainer</c> and each binds. False when the row's size is unknown.
    /// </summary>
    public static bool AreSuppliedAfterData(IMethodSymbol method, AttributeData dataAttribute, KnownTypes types, FixtureReach reach)
    {
        if (DataArity.Of(dataAttribute, method) is not { } values || values >= method.Parameters.Length)
        {
            return false;
        }

        var supplied = method.Parameters.Skip(values).ToArray();
        return supplied.All(types.IsContainer) && AllBind(supplied, reach.For(method.ContainingType, method));
    }

    /// <summary>
    /// An unused theory parameter (xUnit1026) that IsoTest fills: an <c>IContainer</c> with only <c>IContainer</c> parameters
    /// after it, past every data row's values, that binds.
    /// </summary>
    public static bool IsSuppliedTheoryParameter(IParameterSymbol parameter, IMethodSymbol method, KnownTypes types, FixtureReach reach)
    {
        var index = parameter.Ordinal;
        if (!types.IsContainer(parameter) || !method.Parameters.Skip(index).All(types.IsContainer))
        {
            return false;
        }

        // A row that reaches this parameter gives it a value, so it is data after all.
        if (method.GetAttributes().Any(a => DataArity.Of(a, method) is { } values && values > index))
        {
            return false;
        }

        return FixtureReach.Binds(parameter, reach.For(method.ContainingType, method));
    }

    /// <summary>
    /// A constructor parameter without a fixture source (xUnit1041): IsoTest binds constructor <c>IContainer</c> parameters per
    /// test, against that test's declarations (which include the test method's own), so it must bind for every test of the class.
    /// </summary>
    public static bool IsSuppliedConstructorParameter(IParameterSymbol parameter, INamedTypeSymbol testClass, KnownTypes types, FixtureReach reach)
    {
        if (!types.IsContainer(parameter))
        {
            return false;
        }

        var testMethods = TestMethodsOf(testClass, types).ToArray();
        return testMethods.Length == 0
            ? FixtureReach.Binds(parameter, reach.For(testClass, null))
            : testMethods.All(m => FixtureReach.Binds(parameter, reach.For(testClass, m)));
    }

    private static IEnumerable<IMethodSymbol> TestMethodsOf(INamedTypeSymbol testClass, KnownTypes types)
    {
        var seen = new HashSet<string>();
        for (var type = testClass; type is not null; type = type.BaseType)
        {
            foreach (var method in type.GetMembers().OfType<IMethodSymbol>())
            {
                // Derived classes come first: an override is the test, the base method it replaces is not run as well.
                if (method.MethodKind == MethodKind.Ordinary
                    && method.GetAttributes().Any(a => types.IsFactOrDerived(a.AttributeClass))
                    && seen.Add(method.Name + "/" + method.Parameters.Length))
                {
                    yield return method;
                }
            }
        }
    }

    private static bool AllBind(IEnumerable<IParameterSymbol> parameters, IReadOnlyList<Declaration> visible) =>
        parameters.All(p => FixtureReach.Binds(p, visible));

    /// <summary>Whether the fact attribute's nearest [XunitTestCaseDiscoverer] names xunit's FactDiscoverer ([Theory] names its own).</summary>
    private static bool UsesFactDiscoverer(INamedTypeSymbol? attributeClass, KnownTypes types)
    {
        for (var type = attributeClass; type is not null; type = type.BaseType)
        {
            var discoverer = type.GetAttributes().FirstOrDefault(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, types.TestCaseDiscoverer));
            if (discoverer is not null)
            {
                return discoverer.ConstructorArguments.Length > 0
                    && (discoverer.ConstructorArguments[0].Value as string == "Xunit.Sdk.FactDiscoverer"                          // xunit v2
                        || (discoverer.ConstructorArguments[0].Value as ITypeSymbol)?.ToDisplayString() == "Xunit.v3.FactDiscoverer"); // xunit v3
            }
        }

        return false;
    }
}
