using System.Linq;
using Microsoft.CodeAnalysis;

namespace IsoTest.Xunit.Analyzers;

/// <summary>How many values a theory data attribute supplies per row, when that is known at compile time.</summary>
internal static class DataArity
{
    /// <summary>
    /// Values per row of <c>[InlineData]</c>, or the type arguments of the <c>TheoryData&lt;…&gt;</c> behind <c>[MemberData]</c>
    /// or <c>[ClassData]</c>; null when it cannot be known (<c>IEnumerable&lt;object[]&gt;</c>, an unresolved member).
    /// </summary>
    public static int? Of(AttributeData attribute, IMethodSymbol method)
    {
        var attributeClass = attribute.AttributeClass;
        if (attributeClass?.ContainingNamespace?.ToDisplayString() != "Xunit")
        {
            return null;
        }

        switch (attributeClass.Name)
        {
            case "InlineDataAttribute":
                // InlineData(params object[] data): the compiler hands the expanded values over as one array.
                return attribute.ConstructorArguments.Length == 1
                    && attribute.ConstructorArguments[0].Kind == TypedConstantKind.Array
                    && !attribute.ConstructorArguments[0].IsNull
                        ? attribute.ConstructorArguments[0].Values.Length
                        : null;

            case "ClassDataAttribute":
                return attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Value is ITypeSymbol dataClass
                    ? TheoryDataArity(dataClass)
                    : null;

            case "MemberDataAttribute":
                if (attribute.ConstructorArguments.Length == 0 || attribute.ConstructorArguments[0].Value is not string memberName)
                {
                    return null;
                }

                var owner = attribute.NamedArguments.FirstOrDefault(a => a.Key == "MemberType").Value.Value as ITypeSymbol ?? method.ContainingType;
                for (var type = owner; type is not null; type = type.BaseType)
                {
                    foreach (var member in type.GetMembers(memberName))
                    {
                        var memberType = member switch
                        {
                            IPropertySymbol property => property.Type,
                            IFieldSymbol field => field.Type,
                            IMethodSymbol dataMethod => dataMethod.ReturnType,
                            _ => null,
                        };
                        if (memberType is not null)
                        {
                            return TheoryDataArity(memberType);
                        }
                    }
                }

                return null;

            default:
                return null;
        }
    }

    private static int? TheoryDataArity(ITypeSymbol type)
    {
        for (var t = type as INamedTypeSymbol; t is not null; t = t.BaseType)
        {
            if (t.IsGenericType
                && t.OriginalDefinition.Name == "TheoryData"
                && t.OriginalDefinition.ContainingNamespace?.ToDisplayString() == "Xunit")
            {
                return t.TypeArguments.Length;
            }
        }

        return null;
    }
}
