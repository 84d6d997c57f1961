using IsoTest.Server.Containers;
using IsoTest.Server.Http;
using IsoTest.Server.Networks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace IsoTest.Server.Api;

/// <summary>/networks/...: create, list, inspect and remove user-defined networks; the predefined three are listed and inspected.</summary>
internal static class NetworkEndpoints
{
    public static void Map(IEndpointRouteBuilder app, NetworkTable networks, ContainerTable containers)
    {
        app.MapPost("/networks/create", async (HttpContext context) =>
        {
            var request = await ServerJson.ReadAsync(context.Request, new NetworkCreateRequest(), context.RequestAborted).ConfigureAwait(false);
            if (request.Internal is false && request.Driver is not (null or "" or "bridge"))
            {
                throw DockerApiException.BadRequest($"driver {request.Driver} is not supported: IsoTest's networks are bridges (leave --driver out)");
            }

            var network = await networks.CreateAsync(request.Name, request.Labels ?? [], context.RequestAborted).ConfigureAwait(false);
            return Results.Json(new Dictionary<string, object?> { ["Id"] = network.Id, ["Warning"] = "" }, ServerJson.Options, statusCode: StatusCodes.Status201Created);
        });

        app.MapGet("/networks", (HttpContext context) => List(context, networks, containers));

        app.MapGet("/networks/{id}", (string id) => Results.Json(View(Find(networks, id), containers), ServerJson.Options));

        app.MapDelete("/networks/{id}", async (string id) =>
        {
            var view = Find(networks, id);
            if (view.Network is not { } network)
            {
                throw new DockerApiException(StatusCodes.Status403Forbidden, $"{view.Name} is a pre-defined network and cannot be removed");
            }

            if (Members(network.Name, containers).Any())
            {
                throw DockerApiException.Conflict($"error while removing network: network {network.Name} id {network.Id} has active endpoints");
            }

            await networks.RemoveAsync(network).ConfigureAwait(false);
            return Results.NoContent();
        });

        // A container joins its networks when it is created (the engine builds its namespace then); dockerd's later
        // connect and disconnect are refused with that fix.
        app.MapPost("/networks/{id}/connect", IResult (string id) =>
            throw DockerApiException.BadRequest($"connecting a container to {id} after it was created is not supported by IsoTest's server: give the network at create (docker run --network {id} --network-alias ALIAS)"));
        app.MapPost("/networks/{id}/disconnect", IResult (string id) =>
            throw DockerApiException.BadRequest($"disconnecting a container from {id} is not supported by IsoTest's server: remove the container instead"));

        app.MapPost("/networks/prune", async () =>
        {
            var unused = networks.All.Where(n => !Members(n.Name, containers).Any()).ToList();
            foreach (var network in unused)
            {
                await networks.RemoveAsync(network).ConfigureAwait(false);
            }

            return Results.Json(new Dictionary<string, object?> { ["NetworksDeleted"] = unused.Select(n => n.Name).ToList() }, ServerJson.Options);
        });
    }

    private static IResult List(HttpContext context, NetworkTable networks, ContainerTable containers)
    {
        var filters = QueryFilters.Parse(context.Request.Query["filters"], ["name", "id", "label", "type"]);
        var views = NetworkTable.Predefined.Select(p => new NetworkView(p, NetworkTable.PredefinedId(p), null))
            .Concat(networks.All.Select(n => new NetworkView(n.Name, n.Id, n)))
            .Where(v => filters.All(f => f.Key switch
            {
                "name" => f.Value.Any(n => v.Name.Contains(n, StringComparison.Ordinal)),
                "id" => f.Value.Any(id => v.Id.StartsWith(id, StringComparison.Ordinal)),
                "label" => QueryFilters.MatchesLabels(f.Value, v.Network?.Labels ?? new Dictionary<string, string>()),
                _ => f.Value.Contains(v.Network is null ? "builtin" : "custom"),
            }))
            .Select(v => View(v, containers))
            .ToList();
        return Results.Json(views, ServerJson.Options);
    }

    private static NetworkView Find(NetworkTable networks, string id)
    {
        if (NetworkTable.Predefined.FirstOrDefault(p => p == id || NetworkTable.PredefinedId(p).StartsWith(id, StringComparison.Ordinal)) is { } predefined)
        {
            return new NetworkView(predefined, NetworkTable.PredefinedId(predefined), null);
        }

        return networks.TryFind(id) is { } network
            ? new NetworkView(network.Name, network.Id, network)
            : throw new DockerApiException(StatusCodes.Status404NotFound, $"network {id} not found");
    }

    private static IEnumerable<ServerContainer> Members(string network, ContainerTable containers) =>
        containers.All.Where(c => SpecMapper.UserNetworks(c.Request).Contains(network));

    private static Dictionary<string, object?> View(NetworkView view, ContainerTable containers) => new()
    {
        ["Name"] = view.Name,
        ["Id"] = view.Id,
        ["Created"] = ContainerViews.Time(view.Network?.Created ?? DateTimeOffset.UnixEpoch),
        ["Scope"] = "local",
        ["Driver"] = view.Name switch { "host" => "host", "none" => "null", _ => "bridge" },
        ["EnableIPv6"] = false,
        ["Internal"] = view.Network is not null,   // no outbound traffic from user-defined networks (the engine's default)
        ["Attachable"] = false,
        ["Ingress"] = false,
        ["IPAM"] = new Dictionary<string, object?>
        {
            ["Driver"] = "default",
            ["Options"] = new Dictionary<string, string>(),
            ["Config"] = view.Network?.Addresses is { } a ? new[] { new Dictionary<string, string> { ["Subnet"] = a.Subnet, ["Gateway"] = a.Gateway } } : [],
        },
        ["Containers"] = view.Network is null ? new Dictionary<string, object?>()
            : Members(view.Name, containers).ToDictionary(c => c.Id, c => (object?)new Dictionary<string, object?> { ["Name"] = c.Name, ["EndpointID"] = c.Id }),
        ["Options"] = new Dictionary<string, string>(),
        ["Labels"] = view.Network?.Labels ?? new Dictionary<string, string>(),
    };

    private sealed record NetworkView(string Name, string Id, ServerNetwork? Network);

    private sealed class NetworkCreateRequest
    {
        public string? Name { get; set; }

        public string? Driver { get; set; }

        public bool? Internal { get; set; }

        public Dictionary<string, string>? Labels { get; set; }
    }
}
