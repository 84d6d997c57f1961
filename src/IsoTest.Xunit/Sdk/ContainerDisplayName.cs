using System.Reflection;
using IsoTest.Xunit.Fixtures;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>A theory row's test with its IContainer arguments named after their definitions (<see cref="FixtureDisplayName"/>).</summary>
internal static class ContainerDisplayName
{
    public static ITest For(ITest test, Type testClass, MethodInfo method)
    {
        if (test.TestCase is not IXunitTestCase testCase)
        {
            return test;
        }

        var collection = (testCase.TestMethod.TestClass.TestCollection.CollectionDefinition as IReflectionTypeInfo)?.Type;
        var name = FixtureDisplayName.For(test.DisplayName, testClass, method, collection);
        return name == test.DisplayName ? test : new XunitTest(testCase, name);
    }
}
