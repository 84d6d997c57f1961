using System.Text.Json;
using IsoTest.Server.Http;

namespace IsoTest.Server.Containers;

/// <summary>The <c>filters</c> query of GET /containers/json (label, name, id, status, ancestor).</summary>
internal sealed class ContainerFilter(Dictionary<string, List<string>> filters)
{
    private static readonly string[] Known = ["label", "name", "id", "status", "ancestor"];

    public static ContainerFilter Parse(string? json) => new(QueryFilters.Parse(json, Known));

    public bool Matches(ServerContainer c) => filters.All(f => f.Key switch
    {
        // label=key matches any value; label=key=value matches that value
        "label" => QueryFilters.MatchesLabels(f.Value, c.Inner.Spec.Labels),
        "name" => f.Value.Any(n => c.Name.Contains(n.TrimStart('/'), StringComparison.Ordinal)),
        "id" => f.Value.Any(id => c.Id.StartsWith(id, StringComparison.Ordinal)),
        "status" => f.Value.Contains(c.Status),
        "ancestor" => f.Value.Any(a => c.Request.Image == a || c.Image.Name.StartsWith(a, StringComparison.Ordinal)),
        _ => true,
    });
}

/// <summary>
/// Docker's <c>filters</c> query: a JSON map of filter name to values (or, from old clients, to a map of
/// value → true). Values of one filter are alternatives; different filters all hold. An unknown filter is refused.
/// </summary>
internal static class QueryFilters
{
    public static Dictionary<string, List<string>> Parse(string? json, IReadOnlyCollection<string> known)
    {
        var filters = new Dictionary<string, List<string>>();
        if (string.IsNullOrWhiteSpace(json))
        {
            return filters;
        }

        using var document = JsonDocument.Parse(json);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (!known.Contains(property.Name))
            {
                throw DockerApiException.BadRequest($"invalid filter '{property.Name}'");
            }

            filters[property.Name] = property.Value.ValueKind == JsonValueKind.Array
                ? property.Value.EnumerateArray().Select(v => v.GetString() ?? "").ToList()
                : property.Value.EnumerateObject().Select(p => p.Name).ToList();
        }

        return filters;
    }

    /// <summary>label=key matches any value; label=key=value matches that value; every label filter must hold.</summary>
    public static bool MatchesLabels(IEnumerable<string> wanted, IReadOnlyDictionary<string, string> labels) =>
        wanted.All(l => l.Split('=', 2) is var kv && labels.TryGetValue(kv[0], out var v) && (kv.Length == 1 || v == kv[1]));
}
