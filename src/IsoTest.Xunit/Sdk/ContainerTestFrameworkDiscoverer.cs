using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>
/// xunit's discovery, except that a <c>[Fact]</c> whose parameters are all <see cref="IContainer"/> is a normal test
/// (xunit reports "[Fact] methods are not allowed to have parameters"): IsoTest supplies those arguments when it runs.
/// </summary>
internal sealed class ContainerTestFrameworkDiscoverer(IAssemblyInfo assemblyInfo, ISourceInformationProvider sourceProvider, IMessageSink diagnosticMessageSink)
    : XunitTestFrameworkDiscoverer(assemblyInfo, sourceProvider, diagnosticMessageSink)
{
    private const string FactDiscovererTypeName = "Xunit.Sdk.FactDiscoverer";

    protected override bool FindTestsForMethod(ITestMethod testMethod, bool includeSourceInformation, IMessageBus messageBus, ITestFrameworkDiscoveryOptions discoveryOptions)
    {
        var parameters = testMethod.Method.GetParameters().ToArray();
        if (parameters.Length > 0
            && !testMethod.Method.IsGenericMethodDefinition
            && parameters.All(p => p.ParameterType.Name == typeof(IContainer).FullName))
        {
            var facts = testMethod.Method.GetCustomAttributes(typeof(FactAttribute)).ToArray();
            if (facts.Length == 1 && UsesFactDiscoverer(facts[0]))
            {
                var testCase = new XunitTestCase(
                    DiagnosticMessageSink,
                    discoveryOptions.MethodDisplayOrDefault(),
                    discoveryOptions.MethodDisplayOptionsOrDefault(),
                    testMethod);
                return ReportDiscoveredTestCase(testCase, includeSourceInformation, messageBus);
            }
        }

        return base.FindTestsForMethod(testMethod, includeSourceInformation, messageBus, discoveryOptions);
    }

    // [Fact] and attributes derived from it that keep its discoverer; [Theory] and custom discoverers keep their own rules.
    private static bool UsesFactDiscoverer(IAttributeInfo fact) =>
        fact.GetCustomAttributes(typeof(XunitTestCaseDiscovererAttribute)).FirstOrDefault()?.GetConstructorArguments().FirstOrDefault() as string == FactDiscovererTypeName;
}
