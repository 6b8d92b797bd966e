#include "domain/customer.h"

#include <utility>

namespace shopcqrs::domain {

Customer::Customer(CustomerId id, std::string name, std::string email, std::int64_t version)
    : id_(id), name_(std::move(name)), email_(std::move(email)), version_(version) {}

Result<Customer> Customer::Register(CustomerId id, std::string name, std::string email,
                                    Timestamp now) {
  auto valid_name = Name::Create(std::move(name));
  if (!valid_name) return std::unexpected(valid_name.error());
  auto valid_email = Email::Create(std::move(email));
  if (!valid_email) return std::unexpected(valid_email.error());

  Customer customer(id, valid_name->value(), valid_email->value(), 0);
  customer.Record(CustomerRegistered{id, customer.name_, customer.email_}, now);
  return customer;
}

Customer Customer::Rehydrate(CustomerId id, std::string name, std::string email,
                             std::int64_t version) {
  return Customer(id, std::move(name), std::move(email), version);
}

Result<void> Customer::ChangeDetails(std::optional<std::string> name,
                                     std::optional<std::string> email, Timestamp now) {
  if (!name && !email) {
    return std::unexpected(ValidationFailed("at least one of name, email is required"));
  }
  // Validate everything before changing anything.
  std::optional<Name> valid_name;
  if (name) {
    auto checked = Name::Create(std::move(*name));
    if (!checked) return std::unexpected(checked.error());
    valid_name = std::move(*checked);
  }
  std::optional<Email> valid_email;
  if (email) {
    auto checked = Email::Create(std::move(*email));
    if (!checked) return std::unexpected(checked.error());
    valid_email = std::move(*checked);
  }

  if (valid_name) name_ = valid_name->value();
  if (valid_email) email_ = valid_email->value();
  Record(CustomerDetailsChanged{id_, name_, email_}, now);
  return {};
}

void Customer::Record(EventPayload payload, Timestamp now) {
  ++version_;
  pending_.push_back(DomainEvent{std::move(payload), version_, now});
}

}  // namespace shopcqrs::domain
