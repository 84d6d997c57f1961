using System.Reflection;
using IsoTest.Xunit.Fixtures;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>
/// xunit writes a theory row's missing arguments as <c>???</c> (<c>Rows(row: 1, redis: ???)</c>); the IContainer ones are
/// IsoTest's to fill, so the row's name shows the container's definition instead: <c>Rows(row: 1, redis: Redis)</c>.
/// </summary>
internal static class ContainerDisplayName
{
    private const string Missing = "???";

    public static ITest For(ITest test, Type testClass, MethodInfo method)
    {
        if (!test.DisplayName.Contains(Missing, StringComparison.Ordinal) || test.TestCase is not IXunitTestCase testCase)
        {
            return test;
        }

        var collection = (testCase.TestMethod.TestClass.TestCollection.CollectionDefinition as IReflectionTypeInfo)?.Type;
        var declarations = FixtureCatalog.For(testClass, method, collection);
        var name = test.DisplayName;
        foreach (var parameter in method.GetParameters().Where(p => p.ParameterType == typeof(IContainer)))
        {
            string shown;
            try
            {
                var declaration = FixtureBinder.Bind(parameter, declarations, method.Name);
                shown = declaration.Name is null ? declaration.Definition.Name : $"{declaration.Definition.Name} \"{declaration.Name}\"";
            }
            catch (ContainerFixtureException)
            {
                continue; // the run reports why; the name keeps xunit's ???
            }

            name = name.Replace($"{parameter.Name}: {Missing}", $"{parameter.Name}: {shown}", StringComparison.Ordinal);
        }

        return name == test.DisplayName ? test : new XunitTest(testCase, name);
    }
}
